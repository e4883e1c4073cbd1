"""Lease events spooled and published in a thread of their own.

Answers must never wait for the disk: an fsync on a busy ext4 can take seconds, and a client
that sent its DHCPREQUEST meanwhile gives up after three tries (busybox udhcpc: nine seconds
by default) and stays without an address.  The answering loop hands each event over here;
this thread writes whatever has arrived since its last write as one spool entry (one fsync)
and keeps the publisher sending.  A batch the spool refused (disk full, read-only) is kept and
written again, ahead of later events, so nothing is lost or reordered.
"""

import logging
import queue
import threading
import time

from snf_ganeti.errors import SpoolError

log = logging.getLogger("snf-ganeti.dhcpd")

# Events waiting for the spool beyond this make the answering loop wait too: memory stays
# bounded (a few MiB) when the spool cannot be written for a long time.
CAP = 16384
_IDLE = 0.1
_RETRY = 1.0


class LeaseWriter:
    """Owns ``publisher`` (which is not thread-safe) from ``start()`` until ``stop()``."""

    def __init__(self, publisher, cap=CAP, retry=_RETRY):
        self.publisher, self.retry = publisher, retry
        self._events = queue.Queue(maxsize=cap)
        self._batch = []        # being written, or refused by the spool and written again first
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-writer", daemon=True)
        self.spool_errors = 0
        self._quiet_until = 0.0  # repeated spool errors are logged once a minute

    def start(self):
        self._thread.start()

    def put(self, envelope):
        self._events.put(envelope)

    @property
    def waiting(self):
        return self._events.qsize() + len(self._batch)

    def stop(self, timeout):
        """Write what is waiting and stop; False if the spool still had not taken it all
        after ``timeout`` seconds (the thread goes on trying until the process exits)."""
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        if self._thread.is_alive() or self.waiting:
            log.error("%d lease events not spooled at exit (spool stuck?)", self.waiting)
            return False
        return True

    def _run(self):
        while not (self._stopping.is_set() and self.waiting == 0):
            self._batch = self._batch + self._take()   # a new list: the publisher keeps it
            if not self._batch or self._write(self._batch):
                self._batch = []
            elif self._stopping.wait(self.retry):
                time.sleep(0.1)     # stopping: keep trying, but not in a busy loop
            self.publisher.pump()

    def _take(self):
        """What arrived since the last write: waits up to _IDLE for the first event."""
        try:
            batch = [self._events.get(timeout=0 if self._stopping.is_set() else _IDLE)]
        except queue.Empty:
            return []
        while True:
            try:
                batch.append(self._events.get_nowait())
            except queue.Empty:
                return batch

    def _write(self, batch):
        try:
            self.publisher.publish_envelopes(batch)
        except SpoolError as err:
            self.spool_errors += 1
            if time.monotonic() >= self._quiet_until:
                log.error("%s; %d lease events kept in memory, trying again", err, len(batch))
                self._quiet_until = time.monotonic() + 60
            return False
        return True
