"""The copy's pipeline: the disk writes one chunk while the next is read, checked and hashed."""

import io
import os
import threading
import time

import pytest

from snf_ganeti.errors import DiskError
from snf_ganeti.osdefinition import copy as copy_mod
from snf_ganeti.osdefinition import diskwrite
from snf_ganeti.osdefinition.diskwrite import CHUNK
from snf_ganeti.osdefinition.pipeline import Pipeline

pytestmark = pytest.mark.unit


def _threads():
    return {t for t in threading.enumerate() if t.name == "disk-writer"}


def test_calls_run_in_order_in_one_other_thread():
    ran = []
    with Pipeline() as writes:
        for i in range(20):
            writes.call(lambda i: (time.sleep(0.001 * (i % 3)),
                                   ran.append((i, threading.current_thread().name))), i)
        writes.wait()
        assert ran == [(i, "disk-writer") for i in range(20)]
    assert not _threads()


def test_a_failure_is_raised_in_the_caller_and_the_calls_after_it_are_skipped():
    ran, go = [], threading.Event()

    def fail():
        go.wait()
        raise DiskError("cannot zero disk range: No space left on device")
    writes = Pipeline()
    writes.call(fail)
    writes.call(ran.append, 1)  # given before the failure: skipped
    go.set()
    with pytest.raises(DiskError, match="No space left"):
        writes.wait()
    with pytest.raises(DiskError, match="No space left"):
        writes.call(ran.append, 2)  # given after: refused
    writes.close()
    assert ran == [] and not _threads()


def test_leaving_on_an_error_lets_the_call_under_way_end_and_skips_the_queued_ones():
    ran, started, go = [], threading.Event(), threading.Event()
    threading.Timer(0.1, go.set).start()
    with pytest.raises(ValueError, match="the caller's"):
        with Pipeline() as writes:
            writes.call(lambda: (started.set(), go.wait(), ran.append("under way")))
            writes.call(ran.append, "queued")
            started.wait()
            raise ValueError("the caller's")
    assert ran == ["under way"] and not _threads()  # and nothing runs after leaving


def test_a_failure_the_caller_has_not_seen_is_raised_on_leaving():
    failed = threading.Event()

    def fail():
        try:
            raise DiskError("cannot zero disk range: Input/output error")
        finally:
            failed.set()
    with pytest.raises(DiskError, match="Input/output error"):
        with Pipeline() as writes:
            writes.call(fail)
    with pytest.raises(DiskError, match="Input/output error") as raised:
        with Pipeline() as writes:
            failed.clear()
            writes.call(fail)
            failed.wait()
            raise ValueError("met by the caller after it")
    assert isinstance(raised.value.__context__, ValueError)


def test_an_interrupt_while_leaving_still_waits_for_the_thread(monkeypatch):
    # A second Ctrl-C while the pipeline drains: no write may happen once the caller goes
    # on (to wipe and close the disk). The interrupt is a fault a test cannot send safely.
    ran, go = [], threading.Event()
    writes = Pipeline()
    writes.call(go.wait)
    writes.call(ran.append, "queued")
    join = writes._thread.join

    def interrupted(*args):
        monkeypatch.setattr(writes._thread, "join", join)
        raise KeyboardInterrupt
    monkeypatch.setattr(writes._thread, "join", interrupted)
    threading.Timer(0.1, go.set).start()
    with pytest.raises(KeyboardInterrupt):
        writes.close()
    assert not _threads()


class SlowWriter(diskwrite.Writer):
    """A disk slower than the reader: the pipeline is full when a buffer comes round again."""

    def data(self, offset, view, source_offset=None):
        time.sleep(0.02)
        super().data(offset, view, source_offset)


def _copy(disk, size, stream, path=None):
    fd = os.open(disk, os.O_RDWR | os.O_CREAT)
    try:
        copy_mod.Copy(fd, b"", size, lambda *a: None, 1.0).run(stream, path)
    finally:
        os.close(fd)


def _writer_failing_at(failing, written):
    """A Writer whose data write at offset ``failing`` fails; the others go to ``written``."""
    class FailingWriter(diskwrite.Writer):
        def data(self, offset, view, source_offset=None):
            if offset == failing:
                raise DiskError(f"the disk ended at {offset} bytes while being written")
            written.append(offset)
            super().data(offset, view, source_offset)
    return FailingWriter


def test_a_stream_buffer_is_read_into_again_only_once_written(tmp_path, monkeypatch):
    monkeypatch.setattr(copy_mod, "Writer", SlowWriter)
    image = b"".join(bytes([i + 1]) * CHUNK for i in range(7)) + b"tail"
    _copy(tmp_path / "disk", len(image), io.BytesIO(image))
    assert (tmp_path / "disk").read_bytes() == image


def test_a_write_failing_midway_fails_the_copy_and_nothing_is_written_after(tmp_path,
                                                                          monkeypatch):
    written = []
    monkeypatch.setattr(copy_mod, "Writer", _writer_failing_at(CHUNK, written))
    image = tmp_path / "image"
    image.write_bytes(os.urandom(CHUNK) * 6)
    with open(image, "rb") as stream, pytest.raises(DiskError, match="ended at 4194304"):
        _copy(tmp_path / "disk", 6 * CHUNK, stream, str(image))
    assert written == [0] and not _threads()


def test_a_failing_last_write_of_a_stream_fails_the_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(copy_mod, "Writer", _writer_failing_at(2 * CHUNK, []))
    image = b"x" * (2 * CHUNK + 4096)
    with pytest.raises(DiskError, match="ended at 8388608"):
        _copy(tmp_path / "disk", len(image), io.BytesIO(image))
    assert not _threads()


def test_import_writes_the_stream_through_the_pipeline_and_refuses_more_than_the_disk(
        tmp_path, monkeypatch):
    from snf_ganeti.osdefinition import diskio
    monkeypatch.setattr(diskwrite, "Writer", SlowWriter)
    data = b"".join(bytes([i + 1]) * CHUNK for i in range(4)) + bytes(CHUNK) + b"end"
    disk = tmp_path / "disk"
    disk.write_bytes(b"\xff" * len(data))  # old data: the zero chunk must not keep it
    diskio.import_({"OS_API_VERSION": "20", "IMPORT_DEVICE": str(disk)}, io.BytesIO(data))
    assert disk.read_bytes() == data and not _threads()
    with pytest.raises(DiskError, match=f"exceeds the disk's {len(data)} bytes"):
        diskio.import_({"OS_API_VERSION": "20", "IMPORT_DEVICE": str(disk)},
                       io.BytesIO(data + b"!"))
    assert not _threads()
