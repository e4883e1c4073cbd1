"""Logging to stderr in a form journald keeps (priority prefix under systemd)."""

import logging
import os
import sys

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    """``<N>`` prefixes let journald file each line under its syslog priority."""

    def format(self, record):
        return f"<{_PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def setup(verbose=False, stream=None):
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if os.environ.get("JOURNAL_STREAM"):  # systemd adds the timestamp itself
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("pika").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
