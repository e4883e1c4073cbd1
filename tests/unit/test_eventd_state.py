import json

import pytest

from snf_ganeti.errors import SnfGanetiError
from snf_ganeti.eventd.state import PublishedState, StandbyLog
from snf_ganeti.ganeti.tags import firewall_profiles
from snf_ganeti.ganeti.config_data import NIC

pytestmark = pytest.mark.unit


def test_done_jobs_collapse_into_the_watermark(tmp_path):
    state = PublishedState(str(tmp_path / "s.json"))
    state.record(2, ("success",), finished=True)
    assert state.watermark == 0 and state.is_done(2) and not state.is_done(1)
    state.record(1, ("running",), finished=False)
    assert state.published(1) == ("running",)
    state.record(1, ("success",), finished=True)
    assert state.watermark == 2 and state.done == set() and state.jobs == {}


def test_gaps_below_present_jobs_and_marked_done_they_collapse(tmp_path):
    state = PublishedState(str(tmp_path / "s.json"))
    state.record(2, ("success",), finished=True)
    assert state.gaps({4, 7, 9}) == [1, 3, 5, 6, 8]
    state.mark_done([1, 3, 5])
    assert state.watermark == 3 and state.done == {5}
    assert state.gaps([7, 4, 4]) == [6] and state.gaps([]) == []


def test_save_and_load_roundtrip(tmp_path):
    path = str(tmp_path / "s.json")
    state = PublishedState(path)
    state.record(1, ("success",), finished=True)
    state.record(3, ("queued", "waiting"), finished=False)
    state.save()
    loaded = PublishedState.load(path)
    assert loaded.existed and loaded.watermark == 1 and loaded.published(3) == ("queued", "waiting")
    assert not PublishedState.load(str(tmp_path / "none.json")).existed


def test_corrupt_state_is_one_line_error(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with pytest.raises(SnfGanetiError, match="eventd state is corrupt") as err:
        PublishedState.load(str(path))
    assert "\n" not in str(err.value)


def nic(index, name=None, uuid=None):
    return NIC(index=index, name=name, uuid=uuid, mac="aa:00:00:00:00:0%d" % index, ip=None,
               network_uuid=None, network_name=None, mode="bridged", link="br0", vlan="")


def test_firewall_tags_by_index_name_uuid_first_wins(caplog):
    nics = [nic(0), nic(1, name="snf-nic-7"), nic(2, uuid="u-2")]
    tags = ["synnefo:network:0:protected", "synnefo:network:snf-nic-7:limited",
            "synnefo:network:u-2:unprotected", "synnefo:network:0:unprotected",
            "synnefo:network:broken", "other:tag"]
    assert firewall_profiles(tags, nics) == {0: "protected", 1: "limited", 2: "unprotected"}
    assert "malformed firewall tag 'synnefo:network:broken'" in caplog.text


def test_the_standby_log_keeps_the_window_before_its_newest_change():
    log = StandbyLog(window=120)
    log.saw(5, 1000.0)
    log.saw(6, 1050.0)
    log.saw(5, 1100.0)   # seen again: kept by its latest change
    log.saw(7, 1200.0)   # 6 is now more than 120 s before the newest change
    assert log.take() == [5, 7]
    assert log.take() == []


def test_the_standby_log_counts_back_from_its_newest_change_not_from_now():
    log = StandbyLog(window=120)
    log.saw(9, 1000.0)
    log.saw(8, 1001.0)
    assert log.take() == [8, 9]  # however long after the last change it is taken


def test_a_standby_log_with_no_window_keeps_nothing():
    log = StandbyLog(window=0)
    log.saw(1, 1000.0)
    assert log.take() == []


def test_the_standby_log_never_goes_back_in_time():
    log = StandbyLog(window=120)
    log.saw(1, 5000.0)
    log.saw(2, 1000.0)   # the clock stepped back: counted as seen at 5000
    log.saw(3, 5100.0)
    assert log.take() == [1, 2, 3]


def test_the_role_and_the_standby_log_survive_a_restart(tmp_path):
    path = str(tmp_path / "s.json")
    state = PublishedState(path, failover_replay=120)
    state.was_master = False
    state.standby.saw(7, 1000.0)
    state.save()
    loaded = PublishedState.load(path, failover_replay=120)
    assert loaded.was_master is False and loaded.standby.take() == [7]
    old_file = {"version": 1, "watermark": 3, "done": [], "jobs": {}}
    (tmp_path / "old.json").write_text(json.dumps(old_file))
    loaded = PublishedState.load(str(tmp_path / "old.json"), failover_replay=120)
    assert loaded.was_master is None and loaded.standby.take() == [] and loaded.watermark == 3
