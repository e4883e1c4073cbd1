"""Every dataclass in snf_ganeti has a docstring.

Without one, ``dataclasses`` makes one at import time from ``inspect.signature(cls)``: a cost
paid by every ``snf-ganeti`` command Ganeti runs (hooks, NIC scripts, OS scripts), for a
docstring nobody reads. One line saying what the record is also documents it. The modules
are read with ``ast``, not imported, so a module that fails to import is still checked.
"""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "snf_ganeti"


def _is_dataclass_decorator(node):
    """``@dataclass``, ``@dataclass(...)``, ``@dataclasses.dataclass`` or with arguments."""
    if isinstance(node, ast.Call):
        node = node.func
    return (isinstance(node, ast.Name) and node.id == "dataclass") or \
        (isinstance(node, ast.Attribute) and node.attr == "dataclass")


def _dataclasses():
    """(path relative to the repository, line, class node) of every dataclass in the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and \
                    any(_is_dataclass_decorator(d) for d in node.decorator_list):
                yield path.relative_to(PACKAGE.parent), node.lineno, node


def test_every_dataclass_has_a_docstring():
    found = list(_dataclasses())
    assert len(found) > 40, f"only {len(found)} dataclasses found under {PACKAGE}: is it there?"
    missing = [f"{path}:{line} {node.name}" for path, line, node in found
               if ast.get_docstring(node) is None]
    assert not missing, "dataclasses without a docstring (add one line saying what the " \
                        "record is):\n" + "\n".join(missing)
