"""The NIC script's files: per-tap state, and which taps use each routed link."""

import pytest

from snf_ganeti.ifscripts.apply import NicStore

pytestmark = pytest.mark.unit


def test_a_link_is_left_by_its_last_tap_only(tmp_path):
    store = NicStore(str(tmp_path / "nics"), str(tmp_path / "dhcp"))
    store.join_link(0x534E0064, 100, "tap1")
    store.join_link(0x534E0064, 100, "tap2")
    assert store.links_of("tap1") == [(0x534E0064, 100, False)]
    store.leave_link(0x534E0064, 100, "tap1")
    assert store.links_of("tap1") == [] and store.links_of("tap2") == [(0x534E0064, 100, True)]
    store.leave_link(0x534E0064, 100, "tap2")
    assert not (tmp_path / "nics" / "links").exists()


def test_a_changed_mark_is_a_link_of_its_own(tmp_path):
    """network.routed_mark changed with VMs running: each mark's rule goes with its last tap."""
    store = NicStore(str(tmp_path / "nics"), str(tmp_path / "dhcp"))
    store.join_link(0x534E0064, 100, "tap1")
    store.join_link(0x12340064, 100, "tap2")
    assert store.links_of("tap1") == [(0x534E0064, 100, True)]
    assert store.links_of("tap2") == [(0x12340064, 100, True)]
    assert sorted(p.name for p in (tmp_path / "nics" / "links").iterdir()) == [
        "0x12340064-100", "0x534e0064-100"]


def test_taps_are_the_state_files(tmp_path):
    store = NicStore(str(tmp_path / "nics"), str(tmp_path / "dhcp"))
    store.save_state("tap3", {"tap": "tap3"})
    store.join_link(0x534E0064, 100, "tap3")
    with store.locked():
        assert store.taps() == ["tap3"] and store.state("tap3") == {"tap": "tap3"}
    store.forget("tap3")
    assert store.taps() == [] and store.state("tap3") is None


class FailingFirewall:
    """A fault this machine cannot cause on demand: the firewall refuses the removal."""

    def apply(self, tap, nic):
        from snf_ganeti.ifscripts.nft import FirewallError
        raise FirewallError(f"nftables {tap}: refused")


class RecordingHost:
    def __init__(self):
        self.calls = []

    def cleanup(self, tap, state):
        self.calls.append(("cleanup", tap))

    def remove_link_rule(self, table, mark):
        self.calls.append(("rule", table, mark))


def test_down_tries_every_step_and_keeps_the_state_when_one_fails(tmp_path):
    from snf_ganeti.ifscripts import apply
    from snf_ganeti.ifscripts.nft import FirewallError
    store = NicStore(str(tmp_path / "nics"), str(tmp_path / "dhcp"))
    store.save_state("tap1", {"tap": "tap1", "table": 100, "mark": 0x534E0064})
    store.join_link(0x534E0064, 100, "tap1")
    host = RecordingHost()
    with pytest.raises(FirewallError, match="refused"):
        apply._down(host, FailingFirewall(), store, "tap1")
    assert host.calls == [("cleanup", "tap1"), ("rule", 100, 0x534E0064)]
    assert store.links_of("tap1") == [] and store.state("tap1") is not None  # ifdown again


def test_ifdown_for_an_instance_leaves_a_tap_reused_by_another(tmp_path):
    """A hook read tap1 as snf-1's before taking the lock; meanwhile snf-2's ifup took tap1."""
    from snf_ganeti import config as config_mod
    from snf_ganeti.ifscripts import apply
    path = tmp_path / "c.yaml"
    path.write_text(f"network:\n  state_dir: {tmp_path / 'nics'}\n"
                    f"dhcp:\n  bindings_dir: {tmp_path / 'dhcp'}\n")
    config = config_mod.load(str(path))
    store = NicStore(str(tmp_path / "nics"), str(tmp_path / "dhcp"))
    store.save_state("tap1", {"tap": "tap1", "instance": "snf-2", "mode": "bridged"})
    assert apply.ifdown(config, {"INTERFACE": "tap1"}, publish=False, instance="snf-1") is None
    assert store.state("tap1")["instance"] == "snf-2"
