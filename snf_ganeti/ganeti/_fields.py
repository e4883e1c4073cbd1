"""Typed access to decoded JSON that reports problems by their path.

The parsers of this package raise :class:`Invalid` internally and turn it,
at their public boundary, into their own ParseError subclass carrying the
file name; so a problem reads e.g. ``ops[0].status: unknown status 'foo'``.
"""

import json

ANY = object()
NULL = type(None)
_MISSING = object()

_JSON_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string",
               list: "array", dict: "object", NULL: "null"}


class Invalid(Exception):
    """The value at ``where`` is not what Ganeti writes there."""

    def __init__(self, where, problem):
        # The message ends up in one log line, whatever the file contained.
        problem = problem.replace("\n", " ")
        self.where, self.problem = where, problem
        super().__init__(f"{where}: {problem}" if where else problem)


def json_type(value):
    for kind, name in _JSON_NAMES.items():
        if type(value) is kind:
            return name
    return type(value).__name__


def show(value, limit=60):
    """A one-line, bounded rendering of a value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load(data):
    """Decode a whole JSON document given as bytes or str."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as err:
            raise Invalid("", f"not UTF-8 (bad byte at offset {err.start})") from None
    if not data.strip():
        raise Invalid("", "empty file")
    try:
        return json.loads(data)
    except RecursionError:
        raise Invalid("", "invalid JSON: nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, or an integer too long to convert
        raise Invalid("", f"invalid JSON (truncated?): {err}") from None


def key_path(where, key):
    return f"{where}.{key}" if where else str(key)


def index_path(where, index):
    return f"{where}[{index}]"


def check(value, kind, where):
    """Return ``value`` if it has the JSON type ``kind`` (a type or a tuple).

    ``bool`` is never accepted as an ``int``: JSON tells them apart, Python not.
    """
    if kind is ANY:
        return value
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if type(value) in kinds:
        return value
    wanted = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)
    raise Invalid(where, f"expected {wanted}, got {json_type(value)}")


def get(obj, key, kind, where, default=_MISSING):
    """``obj[key]`` checked against ``kind``; ``default`` if absent and given."""
    here = key_path(where, key)
    if key not in obj:
        if default is _MISSING:
            raise Invalid(here, "missing")
        return default
    return check(obj[key], kind, here)
