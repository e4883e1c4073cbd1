"""BindingTable: a binding answers once its tap and INDEV links exist, in any order."""

import pytest

from snf_ganeti.dhcp.answer import Link
from snf_ganeti.dhcp.table import BindingTable
from tests.support.dhcp_packets import binding

pytestmark = pytest.mark.unit

TAP = Link("tap0", 7, "02:00:00:00:00:01")
BRIDGE = Link("br0", 3, "02:00:00:00:00:b0")
ROUTED = binding("tap0")
BRIDGED = binding("tap0", INDEV="br0")


def test_binding_before_its_link_becomes_active_once():
    table = BindingTable()
    assert table.set_binding("tap0", ROUTED) == []
    assert table.lookup(7) is None
    assert table.set_link(TAP) == [(ROUTED, TAP)]
    assert table.lookup(7) == (ROUTED, TAP)
    assert table.set_link(TAP) == []            # not newly active a second time
    assert table.active() == [(ROUTED, TAP)]


def test_link_before_its_binding():
    table = BindingTable()
    assert table.set_link(TAP) == []
    assert table.set_binding("tap0", ROUTED) == [(ROUTED, TAP)]
    assert table.set_binding("tap0", ROUTED) == []


def test_bridged_binding_needs_both_tap_and_indev():
    table = BindingTable()
    table.set_binding("tap0", BRIDGED)
    assert table.set_link(TAP) == []
    assert table.lookup(7) is None
    assert table.set_link(BRIDGE) == [(BRIDGED, BRIDGE)]
    assert table.lookup(7) == (BRIDGED, BRIDGE)     # keyed by the tap, answered by the bridge
    assert table.lookup(3) is None


def test_replaced_binding_is_newly_active():
    table = BindingTable()
    table.set_link(TAP)
    table.set_binding("tap0", ROUTED)
    changed = binding("tap0", MTU="1400")
    assert table.set_binding("tap0", changed) == [(changed, TAP)]
    assert table.lookup(7) == (changed, TAP)


def test_link_rename():
    table = BindingTable()
    table.set_binding("tap0", ROUTED)
    assert table.set_link(Link("tmp123", 7, TAP.mac)) == []
    assert table.set_link(TAP) == [(ROUTED, TAP)]
    assert set(table.links) == {"tap0"}
    assert table.set_link(Link("gone", 7, TAP.mac)) == []   # renamed away
    assert table.lookup(7) is None
    assert set(table.links) == {"gone"}


def test_recreated_tap_with_a_new_ifindex():
    table = BindingTable()
    table.set_binding("tap0", ROUTED)
    table.set_link(TAP)
    new = Link("tap0", 9, "02:00:00:00:00:02")
    assert table.set_link(new) == [(ROUTED, new)]
    assert (table.lookup(7), table.lookup(9)) == (None, (ROUTED, new))


def test_drop_link_deactivates():
    table = BindingTable()
    table.set_binding("tap0", BRIDGED)
    table.set_link(TAP)
    table.set_link(BRIDGE)
    assert table.drop_link(3) == []
    assert table.lookup(7) is None
    assert table.active() == []
    assert table.set_link(BRIDGE) == [(BRIDGED, BRIDGE)]
    assert table.drop_link(7) == []
    assert table.lookup(7) is None
    assert table.drop_link(42) == []


def test_removing_a_binding_deactivates():
    table = BindingTable()
    table.set_link(TAP)
    table.set_binding("tap0", ROUTED)
    assert table.set_binding("tap0", None) == []
    assert table.lookup(7) is None
    assert table.set_binding("tap0", None) == []    # removing twice is harmless
    assert "tap0" in table.links


def test_replace_links():
    table = BindingTable()
    table.set_binding("tap0", ROUTED)
    table.set_binding("tap1", binding("tap1", MAC="02:00:00:00:00:11"))
    table.set_link(TAP)
    tap1 = Link("tap1", 8, "02:00:00:00:00:03")
    assert table.replace_links([tap1]) == [(table.bindings["tap1"], tap1)]
    assert table.lookup(7) is None
    assert table.lookup(8) == (table.bindings["tap1"], tap1)
    assert table.replace_links([tap1, TAP]) == [(ROUTED, TAP)]
    assert table.replace_links([]) == []
    assert table.active() == []
