"""LeaseWriter: lease events reach the spool in order, from a thread of their own, and a
batch the spool refused is written again rather than lost."""

import threading

import pytest

from snf_ganeti.dhcp.leases import LeaseWriter
from snf_ganeti.errors import SpoolError

pytestmark = pytest.mark.unit


class Publisher:
    """Records each spool write; refuses the first ``refusals`` (a full disk, say), and
    blocks every write while ``stalled`` is clear (a disk that takes seconds per fsync)."""

    def __init__(self, refusals=0):
        self.written, self.refusals, self.pumps = [], refusals, 0
        self.stalled = threading.Event()
        self.stalled.set()
        self.writing = threading.Event()
        self.thread = None

    def publish_envelopes(self, envelopes):
        self.thread = threading.current_thread().name
        self.writing.set()
        self.stalled.wait()
        if self.refusals:
            self.refusals -= 1
            raise SpoolError("/spool: cannot spool message: No space left on device")
        self.written.append(list(envelopes))

    def pump(self):
        self.pumps += 1


def test_events_are_written_in_order_by_the_writer_thread():
    publisher = Publisher()
    writer = LeaseWriter(publisher)
    writer.start()
    for n in range(100):
        writer.put(n)
    assert writer.stop(timeout=10)
    assert [n for batch in publisher.written for n in batch] == list(range(100))
    assert publisher.thread == "lease-writer" and publisher.pumps >= 1


def test_events_arriving_during_a_slow_write_go_in_the_next_one():
    publisher = Publisher()
    publisher.stalled.clear()
    writer = LeaseWriter(publisher)
    writer.start()
    writer.put("first")
    assert publisher.writing.wait(10)
    for n in range(50):         # put() does not wait for the stalled write
        writer.put(n)
    assert writer.waiting == 51
    publisher.stalled.set()
    assert writer.stop(timeout=10)
    assert publisher.written == [["first"], list(range(50))]


def test_a_refused_batch_is_written_again_first(caplog):
    publisher = Publisher(refusals=2)
    writer = LeaseWriter(publisher, retry=0.01)
    writer.start()
    writer.put("a")
    writer.put("b")
    assert writer.stop(timeout=10)
    assert [n for batch in publisher.written for n in batch] == ["a", "b"]
    assert writer.spool_errors == 2 and writer.waiting == 0
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["/spool: cannot spool message: No space left on device; 2 lease events "
                      "kept in memory, trying again"]    # once, not once per attempt


def test_stop_says_what_the_spool_did_not_take(caplog):
    publisher = Publisher(refusals=10**6)
    writer = LeaseWriter(publisher, retry=0.01)
    writer.start()
    writer.put("a")
    assert not writer.stop(timeout=0.3)
    assert "1 lease events not spooled at exit" in caplog.text


def test_stop_before_start_has_nothing_to_write():
    assert LeaseWriter(Publisher()).stop(timeout=1)
