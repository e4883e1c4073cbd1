"""The on-disk spool: a message is here, fsync'd, until the broker confirmed it.

One file per entry, named ``<time_ns>-<pid>-<seq>.msg`` so that sorting the
names gives publication order (exact within one process). Many processes may
write; the one that holds the spool's lock (:meth:`Spool.sender_lock`) is the
only one that sends, so order holds and nothing goes out twice from two senders.

One entry holds one message, or a batch a caller publishes at once (one
fsync for all of them). File format, per message: one JSON header line
(message id, routing key, created, body length), then the body bytes exactly
as published. The file is written under
its final name and fsync'd (on ext4 and xfs that also makes the new directory
entry durable, which saves a rename and a directory fsync per message, a third
of the cost); a reader that finds fewer body bytes than the header announces is
looking at a message still being written, or at one whose writer was killed
before ``put`` returned: it skips it, and :meth:`Spool.reap_incomplete` deletes
it once it is old.
"""

import fcntl
import itertools
import json
import logging
import math
import os
import time
from typing import NamedTuple

from snf_ganeti.errors import SpoolError

log = logging.getLogger(__name__)

SUFFIX = ".msg"
BAD_DIR = "bad"
LOCK_FILE = ".sender.lock"
STALE_INCOMPLETE_SECONDS = 300
# One encoder for every body: json.dumps with separators builds a new one per call.
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
# A header is four known fields: formatted directly, three times faster than encoding a dict.
_string = json.encoder.encode_basestring_ascii


class Envelope(NamedTuple):
    """One message as it travels: what the broker gets, and its stable id (a NamedTuple:
    dhcpd makes one per lease, and a frozen dataclass costs five times as much to make)."""

    message_id: str
    routing_key: str
    body: bytes
    created: float


class Incomplete(Exception):
    """The entry is still being written (or its writer died before finishing)."""


def encode(envelopes):
    """One entry holding ``envelopes``, in order (one fsync for a whole batch)."""
    parts = []
    for envelope in envelopes:
        header = (f'{{"message_id":{_string(envelope.message_id)},'
                  f'"routing_key":{_string(envelope.routing_key)},'
                  f'"created":{_number(envelope.created)},"length":{len(envelope.body)}}}')
        parts += [header.encode(), b"\n", envelope.body]
    return b"".join(parts)


def _number(value):
    value = float(value)
    return repr(value) if math.isfinite(value) else json.dumps(value)   # NaN as json writes it


def decode(data, source):
    """The envelopes of one entry; Incomplete if its writer has not finished it."""
    envelopes, offset = [], 0
    while offset < len(data) or not envelopes:
        newline = data.find(b"\n", offset)
        if newline < 0:
            raise Incomplete(source)
        try:
            meta = json.loads(data[offset:newline])
            length = int(meta["length"])
            start, offset = newline + 1, newline + 1 + length
            envelopes.append(Envelope(str(meta["message_id"]), str(meta["routing_key"]),
                                      data[start:offset], float(meta["created"])))
        except (ValueError, KeyError, TypeError):
            raise SpoolError(f"{source}: not a spool entry (bad header)") from None
        if offset > len(data):
            raise Incomplete(source)
    return envelopes


class Spool:
    """A spool directory; cheap to create, holds no open files but the lock."""

    def __init__(self, directory):
        self.directory = directory
        self._seq = itertools.count()
        self._pid = None
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as err:
            raise SpoolError(f"{directory}: cannot create spool directory: {err.strerror}") from None

    def put(self, envelopes):
        """Write ``envelopes`` (a list, sent in order) durably as one entry; its name."""
        pid = os.getpid()
        if pid != self._pid:  # a forked child must not reuse the parent's sequence
            self._pid, self._seq = pid, itertools.count()
        name = f"{time.time_ns():020d}-{pid}-{next(self._seq):08d}{SUFFIX}"
        path = os.path.join(self.directory, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, encode(envelopes))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            _unlink_quietly(path)
            raise SpoolError(f"{self.directory}: cannot spool message: {err.strerror}") from None
        return name

    def entries(self):
        """Names of the spooled messages, oldest first."""
        return sorted(n for n in os.listdir(self.directory) if n.endswith(SUFFIX))

    def read(self, name):
        """The envelopes of entry ``name``, or None if it is gone, incomplete or corrupt.

        A corrupt entry (only possible through outside damage) is moved to
        ``bad/`` so it stops blocking the queue, and logged with its name.
        """
        path = os.path.join(self.directory, name)
        try:
            with open(path, "rb") as stream:
                return decode(stream.read(), path)
        except (FileNotFoundError, Incomplete):
            return None
        except SpoolError as err:
            log.error("%s; moved to %s/", err, BAD_DIR)
            os.makedirs(os.path.join(self.directory, BAD_DIR), exist_ok=True)
            os.replace(path, os.path.join(self.directory, BAD_DIR, name))
            return None

    def remove(self, name):
        _unlink_quietly(os.path.join(self.directory, name))

    def mtime_ns(self):
        return os.stat(self.directory).st_mtime_ns

    def stats(self):
        """(depth, age in seconds of the oldest entry or None)."""
        names = self.entries()
        if not names:
            return 0, None
        oldest_ns = int(names[0].split("-", 1)[0])
        return len(names), max(0.0, (time.time_ns() - oldest_ns) / 1e9)

    def reap_incomplete(self, older_than=STALE_INCOMPLETE_SECONDS):
        """Delete entries whose writer was killed before ``put`` returned.

        Call only as the sender: a writer still working on an entry is younger
        than ``older_than``.
        """
        limit = time.time_ns() - int(older_than * 1e9)
        for name in self.entries():
            if int(name.split("-", 1)[0]) >= limit:
                break
            path = os.path.join(self.directory, name)
            try:
                with open(path, "rb") as stream:
                    decode(stream.read(), path)
            except Incomplete:
                log.warning("%s: removing a message whose writer died while spooling it", path)
                _unlink_quietly(path)
            except (FileNotFoundError, SpoolError):
                pass

    def sender_lock(self):
        return SenderLock(os.path.join(self.directory, LOCK_FILE))


class SenderLock:
    """An flock on the spool: whoever holds it is the spool's only sender."""

    def __init__(self, path):
        self.path = path
        self._fd = None

    @property
    def held(self):
        return self._fd is not None

    def acquire(self):
        """Try once, without waiting; True if this process is now the sender."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
