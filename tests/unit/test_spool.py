import os

import pytest

from snf_ganeti import spool as spool_mod
from snf_ganeti.errors import SpoolError
from snf_ganeti.publisher import envelope_for

pytestmark = pytest.mark.unit


def test_put_read_roundtrip_in_order(tmp_path):
    spool = spool_mod.Spool(str(tmp_path))
    names = [spool.put([envelope_for("a.b", {"n": n}, f"id{n}")]) for n in range(50)]
    assert spool.entries() == names
    (envelope,) = spool.read(names[3])
    assert envelope.message_id == "id3" and envelope.routing_key == "a.b"
    assert envelope.body == b'{"n":3}'
    assert spool.stats()[0] == 50
    assert oct(os.stat(tmp_path / names[0]).st_mode & 0o777) == "0o600"


def test_incomplete_entry_is_skipped_then_reaped(tmp_path):
    spool = spool_mod.Spool(str(tmp_path))
    name = spool.put([envelope_for("a.b", {"n": 1}), envelope_for("a.b", {"n": 2})])
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[:-3])  # a writer killed mid-write
    assert spool.read(name) is None
    spool.reap_incomplete(older_than=3600)
    assert spool.entries() == [name]
    spool.reap_incomplete(older_than=0)
    assert spool.entries() == []


def test_batch_is_one_entry_in_order(tmp_path):
    spool = spool_mod.Spool(str(tmp_path))
    name = spool.put([envelope_for("k", {"n": n}, f"b{n}") for n in range(3)])
    assert spool.entries() == [name]
    assert [e.message_id for e in spool.read(name)] == ["b0", "b1", "b2"]
    assert spool.read(name)[2].body == b'{"n":2}'


def test_corrupt_entry_moves_to_bad(tmp_path, caplog):
    spool = spool_mod.Spool(str(tmp_path))
    name = spool.put([envelope_for("a.b", {})])
    (tmp_path / name).write_bytes(b"garbage\n{}")
    assert spool.read(name) is None
    assert spool.entries() == []
    assert (tmp_path / "bad" / name).exists()
    assert name in caplog.text


def test_sender_lock_is_exclusive(tmp_path):
    spool = spool_mod.Spool(str(tmp_path))
    first, second = spool.sender_lock(), spool.sender_lock()
    assert first.acquire() and not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_unwritable_spool_is_a_spool_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(SpoolError, match="cannot create spool directory"):
        spool_mod.Spool(str(target / "sub"))


@pytest.mark.parametrize("routing_key, message_id, created", [
    ('ganeti.snf.event."q"\\', "id\n\u2028", 1700000000.123456),
    ("ganeti.\u03b1\U0001f600.event", "", 0), ("", "x", -1.5), ("a", "b", 1e20),
    ("a", "b", float("nan")), ("a", "b", float("inf"))])
def test_headers_round_trip_whatever_the_key_id_and_time(routing_key, message_id, created):
    envelope = spool_mod.Envelope(message_id, routing_key, b'{"n":1}\n', created)
    (back,) = spool_mod.decode(spool_mod.encode([envelope]), "test")
    assert back[:3] == envelope[:3]
    assert back.created == created or (created != created and back.created != back.created)
