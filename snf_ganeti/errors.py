"""The one exception hierarchy of snf-ganeti.

Every error a user can cause (bad config, bad input file, bad environment) is a
subclass of :class:`SnfGanetiError`; its ``str()`` is a single line that names
what is wrong, and ``exit_status`` is what the CLI exits with.
"""


class SnfGanetiError(Exception):
    """Base class; the CLI prints ``str(err)`` and exits ``exit_status``."""

    exit_status = 1


class ConfigError(SnfGanetiError):
    """The configuration file is missing, unreadable or invalid."""

    exit_status = 2

    def __init__(self, path, key, problem):
        self.path, self.key, self.problem = str(path), key, problem
        where = f"{self.key}: " if key else ""
        super().__init__(f"{self.path}: {where}{problem}")


class ParseError(SnfGanetiError):
    """An input (file, environment, packet) could not be parsed."""

    exit_status = 2

    def __init__(self, source, problem):
        self.source, self.problem = str(source), problem
        super().__init__(f"{self.source}: {problem}")


class JobFileError(ParseError):
    """A Ganeti job file is malformed or truncated."""


class SsconfError(ParseError):
    """A Ganeti ssconf file is missing or malformed."""


class ConfigDataError(ParseError):
    """Ganeti's config.data is missing or malformed."""


class EnvVarError(ParseError):
    """A variable in the environment Ganeti gave us is missing or bad (source: its name)."""


class BindingError(ParseError):
    """A DHCP binding file is malformed (the daemon logs it and ignores that file)."""


class SteeringError(SnfGanetiError):
    """The rules that steer DHCP and neighbour discovery to the queues could not be set."""


class MessageError(SnfGanetiError):
    """A message does not match its schema."""


class SpoolError(SnfGanetiError):
    """The on-disk spool cannot be written or read."""


class BrokerError(SnfGanetiError):
    """No AMQP broker could be reached (credentials are never included)."""


class HostError(SnfGanetiError):
    """The node refused a change to a NIC's links, rules, routes or proxies (one line naming
    the object and the kernel's answer)."""


class OSDefinitionError(SnfGanetiError):
    """The OS definition (``snf-ganeti os``) cannot deploy or customize an image.

    ``user_message`` is what the frontend shows (the ``image-error`` message).
    """

    def __init__(self, message):
        super().__init__(message)
        self.user_message = message


class OSParameterError(OSDefinitionError):
    """An OS parameter (or OS API variable) is missing, invalid or conflicting."""

    def __init__(self, parameter, problem):
        self.parameter, self.problem = parameter, problem
        super().__init__(f"OS parameter {parameter}: {problem}")


class MissingOSParameter(OSParameterError):
    exit_status = 3


class InvalidOSParameter(OSParameterError):
    exit_status = 4


class ConflictingOSParameters(OSParameterError):
    exit_status = 5


class ImageError(OSDefinitionError):
    """The image cannot be fetched, or is corrupt, truncated or of the wrong checksum."""

    exit_status = 6


class DiskError(OSDefinitionError):
    """The instance's disk cannot take the image (too small, not a disk, unreadable)."""

    exit_status = 7


class CustomizationError(OSDefinitionError):
    """A customization task failed; ``task`` names it."""

    exit_status = 8

    def __init__(self, task, problem):
        self.task = task
        super().__init__(f"{task}: {problem}")


def one_line(output, limit=200, default="failed without saying why"):
    """A tool's error output (or an exception) as one line: its ``Error:`` messages, else its
    lines that mention an error, else all of it; deduplicated, usage hints dropped."""
    lines = [line.strip() for line in str(output).splitlines()
             if line.strip() and not line.strip().startswith("Try `")]
    messages = ([line.split("Error: ", 1)[1] for line in lines if "Error: " in line]
                or [line for line in lines if "error" in line.lower()] or lines)
    return ("; ".join(dict.fromkeys(messages)) or default)[:limit]
