"""LeaseWriter: lease events reach the spool in order, from a thread of their own, and a
batch the spool refused is written again rather than lost."""

import argparse
import json
import threading
import time

import pytest

from snf_ganeti.dhcp.leases import LeaseWriter
from snf_ganeti.errors import SpoolError
from snf_ganeti.publisher import ENTRY_MAX

pytestmark = pytest.mark.unit


class Publisher:
    """Records each spool write; refuses the first ``refusals`` (a full disk, say) with
    ``error``, and blocks every write while ``stalled`` is clear (a disk that takes seconds
    per fsync)."""

    def __init__(self, refusals=0, error=None):
        self.written, self.refusals, self.pumps, self.calls = [], refusals, 0, 0
        self.error = error or SpoolError("/spool: cannot spool message: No space left on device")
        self.stalled = threading.Event()
        self.stalled.set()
        self.writing = threading.Event()
        self.thread = None

    def publish_envelopes(self, envelopes):
        self.calls += 1
        self.thread = threading.current_thread().name
        self.writing.set()
        self.stalled.wait()
        if self.refusals:
            self.refusals -= 1
            raise self.error
        self.written.append(list(envelopes))

    def pump(self):
        self.calls += 1
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
    writer.put("a")
    writer.put("b")
    writer.start()
    writer.put("c")
    assert writer.stop(timeout=10)
    assert [n for batch in publisher.written for n in batch] == ["a", "b", "c"]
    assert writer.spool_errors == 2 and writer.waiting == 0
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, errors     # once, not once per attempt
    assert errors[0].startswith("/spool: cannot spool message: No space left on device; ")


def test_a_refusal_part_way_does_not_write_the_first_entries_again():
    class RefusesTheSecondEntry(Publisher):
        def publish_envelopes(self, envelopes):
            if len(self.written) == 1 and not self.refused:
                self.refused = True
                raise self.error
            super().publish_envelopes(envelopes)

    publisher = RefusesTheSecondEntry()
    publisher.refused = False
    writer = LeaseWriter(publisher, retry=0.01)
    for n in range(2 * ENTRY_MAX + 1):
        writer.put(n)
    writer.start()
    assert writer.stop(timeout=10)
    assert [len(batch) for batch in publisher.written] == [ENTRY_MAX, ENTRY_MAX, 1]
    assert [n for batch in publisher.written for n in batch] == list(range(2 * ENTRY_MAX + 1))
    assert writer.spool_errors == 1


def test_an_unexpected_error_does_not_end_the_thread(caplog):
    publisher = Publisher(refusals=1, error=OSError(5, "Input/output error"))
    writer = LeaseWriter(publisher, retry=0.01)
    writer.put("a")
    writer.start()
    assert writer.stop(timeout=10)
    assert publisher.written == [["a"]]
    assert "lease events: OSError: [Errno 5] Input/output error" in caplog.text


def test_beyond_the_cap_new_events_are_dropped_not_waited_for(caplog):
    publisher = Publisher()
    publisher.stalled.clear()
    writer = LeaseWriter(publisher, cap=10)
    writer.start()
    writer.put(0)
    assert publisher.writing.wait(10)
    for n in range(1, 30):          # the answering loop must not wait: put() returns
        writer.put(n)
    assert writer.waiting == 10 and writer.dropped == 20
    assert caplog.text.count("new ones are dropped") == 1
    publisher.stalled.set()
    assert writer.stop(timeout=10)
    assert [n for batch in publisher.written for n in batch] == list(range(10))


def test_after_a_timed_out_stop_the_publisher_is_left_alone(caplog):
    publisher = Publisher(refusals=10**6)
    writer = LeaseWriter(publisher, retry=0.01)
    writer.start()
    writer.put("a")
    assert not writer.stop(timeout=0.3)
    assert "1 lease events not spooled at exit" in caplog.text
    writer._thread.join(5)
    calls = publisher.calls
    time.sleep(0.2)
    assert not writer._thread.is_alive() and publisher.calls == calls


def test_stop_before_start_has_nothing_to_write():
    assert LeaseWriter(Publisher()).stop(timeout=1)


@pytest.mark.parametrize("in_use", [False, True])
def test_run_daemon_closes_the_publisher_unless_a_thread_still_uses_it(
        tmp_path, monkeypatch, in_use):
    from snf_ganeti import daemon_status, pathutils, publisher
    config = tmp_path / "snf-ganeti.yaml"
    config.write_text(json.dumps({"amqp": {"urls": ["amqp://guest:guest@127.0.0.1:1/"],
                                           "spool_dir": str(tmp_path / "spool")}}))
    monkeypatch.setattr(pathutils, "CONFIG_CACHE", str(tmp_path / "config.cache"))
    closed = []
    monkeypatch.setattr(publisher.Publisher, "close", lambda self, timeout=0: closed.append(1))

    class Daemon:
        def __init__(self, config, publisher):
            self.publisher_in_use = in_use

        def run(self, should_stop):
            pass
    assert daemon_status.run_daemon(argparse.Namespace(config=str(config)), Daemon, "x") == 0
    assert closed == ([] if in_use else [1])
