"""Lease events spooled and published in a thread of their own.

Answers must never wait for the disk: an fsync on a busy ext4 can take seconds, and a client
that sent its DHCPREQUEST meanwhile gives up after three tries (busybox udhcpc: nine seconds
by default) and stays without an address.  The answering loop hands each event over here;
this thread writes whatever has arrived since its last write as one spool entry (one fsync)
and keeps the publisher sending.  A batch the spool refused (disk full, read-only) is kept and
written again, ahead of later events, so nothing is reordered; only beyond ``CAP`` waiting
events are new ones dropped (counted and logged), because holding up the answers instead
would take every VM's network down with the disk.
"""

import logging
import queue
import threading
import time

from snf_ganeti.errors import SpoolError
from snf_ganeti.logs import Throttle
from snf_ganeti.publisher import ENTRY_MAX

log = logging.getLogger("snf-ganeti.dhcpd")

CAP = 16384             # events waiting for the spool: a few MiB
_IDLE = 0.1
_RETRY = 1.0


class LeaseWriter:
    """Owns ``publisher`` (which is not thread-safe) from ``start()`` until ``stop()`` returns
    True; after a False one the thread may still be inside a write, so the publisher must be
    left alone (its spool keeps what it took)."""

    def __init__(self, publisher, cap=CAP, retry=_RETRY):
        self.publisher, self.cap, self.retry = publisher, cap, retry
        self._events = queue.Queue()
        self._batch = []        # being written, or refused and written again first
        self._stopping = threading.Event()
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="lease-writer", daemon=True)
        self.spool_errors = self.dropped = 0
        self._throttle = Throttle()

    def start(self):
        self._thread.start()

    def put(self, envelope):
        """Hand ``envelope`` over; never waits.  Beyond the cap it is dropped and counted."""
        if self.waiting >= self.cap:
            self.dropped += 1
            self._log("dropped", "%d lease events wait for the spool already: new ones are "
                      "dropped (%d so far)", self.cap, self.dropped)
            return
        self._events.put(envelope)

    @property
    def waiting(self):
        return self._events.qsize() + len(self._batch)

    def stop(self, timeout):
        """Write what is waiting and stop; False if the spool had not taken it all after
        ``timeout`` seconds (the thread then touches the publisher no more once its current
        write returns)."""
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        if self._thread.is_alive() or self.waiting:
            self._abandoned = True
            log.error("%d lease events not spooled at exit (is the spool's disk stalled?); "
                      "the daemon's next start finds those already spooled", self.waiting)
            return False
        return True

    def _run(self):
        while not (self._stopping.is_set() and self.waiting == 0) and not self._abandoned:
            self._batch = self._batch + self._take()   # a new list: the publisher keeps it
            if not self._write() and self._stopping.wait(self.retry):
                time.sleep(0.1)     # stopping: keep trying, but not in a busy loop
            if not self._abandoned:
                self._call(self.publisher.pump)

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

    def _write(self):
        """Spool the batch an entry's worth at a time, each dropped once the spool took it:
        a refusal part-way does not have the first entries written again on every retry."""
        while self._batch:
            if not self._call(self.publisher.publish_envelopes, self._batch[:ENTRY_MAX]):
                self.spool_errors += 1
                return False
            self._batch = self._batch[ENTRY_MAX:]
        return True

    def _call(self, function, *args):
        """False, logged, for anything ``function`` raises: this thread must not die, or the
        events would wait in memory for good.  A batch whose write raised something else
        than SpoolError may be spooled already and is written again: consumers drop the
        repeat by its message_id, as after any broker trouble."""
        try:
            function(*args)
            return True
        except SpoolError as err:
            self._log("spool", "%s; %d lease events kept in memory, trying again", err,
                      self.waiting)
        except Exception as err:
            self._log(type(err).__name__, "lease events: %s: %s", type(err).__name__, err)
        return False

    def _log(self, what, message, *args):
        if self._throttle(what):
            log.error(message, *args)
