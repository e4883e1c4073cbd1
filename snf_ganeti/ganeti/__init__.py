"""Read-only parsers for the files Ganeti keeps under its data directory.

Job files (``queue/job-<id>``), ssconf files and ``config.data`` are parsed
into frozen dataclasses; anything malformed raises the matching
:class:`~snf_ganeti.errors.ParseError` subclass, never a bare KeyError.
"""
