"""Logging to stderr in a form journald keeps (priority prefix under systemd)."""

import logging
import os
import sys
import time

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


class Throttle:
    """Whether a lasting problem's line may be logged now: once per ``interval`` seconds for
    each ``kind``, not at every retry."""

    def __init__(self, interval=60.0, clock=time.monotonic):
        self.interval, self.clock = interval, clock
        self._quiet_until = {}  # kind -> until when it is not logged again

    def __call__(self, kind):
        now = self.clock()
        if now < self._quiet_until.get(kind, 0.0):
            return False
        self._quiet_until[kind] = now + self.interval
        return True
