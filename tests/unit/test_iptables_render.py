"""The legacy-iptables ruleset as data: profiles, per-tap plans, layer-2 batches (no kernel)."""

import pytest

from snf_ganeti.ifscripts import iftree
from snf_ganeti.ifscripts import iptables_render as r
from snf_ganeti.ifscripts import l2_render as l2
from snf_ganeti.ifscripts.default_profiles import DEFAULT_PROFILES
from snf_ganeti.ifscripts.firewall import NicFilter, parse_profiles

pytestmark = pytest.mark.unit
PROFILES = parse_profiles(DEFAULT_PROFILES)
MAC = "02:00:00:00:00:10"


def nic(tap="tap0", mode="bridged", profile="limited", **kw):
    fields = dict(tap=tap, mode=mode, mac=MAC, ipv4=("192.0.2.10",),
                  ipv6=("2001:db8::10", "fe80::ff:fe00:10"), profile=profile)
    return NicFilter(**{**fields, **kw})


def test_icmpv6_rules_match_ipv6_icmp_not_protocol_1():
    v6 = r.profile_rules(PROFILES["protected"], "ip6")
    icmp = [rule for rule in v6 if "icmp6" in rule]
    assert icmp and all(rule[:2] == ["-p", "ipv6-icmp"] for rule in icmp)
    assert ["-p", "icmp", "-j", "ACCEPT"] not in v6
    assert ["-p", "icmp", "-j", "ACCEPT"] in r.profile_rules(PROFILES["protected"], "ip")
    assert {rule[rule.index("--icmpv6-type") + 1] for rule in icmp} >= {"134", "135", "136", "137"}


def test_profile_rules_keep_order_and_end_with_the_default():
    limited = r.profile_rules(PROFILES["limited"], "ip")
    assert limited[0] == ["-p", "tcp", "-m", "tcp", "!", "--syn", "-j", "ACCEPT"]
    assert limited[1] == ["-p", "tcp", "-m", "multiport", "--dports", "22,3389", "-j", "ACCEPT"]
    assert limited[-1] == ["-j", "DROP"]
    assert r.profile_rules(PROFILES["unprotected"], "ip6") == [["-j", "ACCEPT"]]


def test_many_ports_are_split_for_multiport():
    profile = parse_profiles({"p": {"rules": [{"proto": "udp", "dport": list(range(1, 21)),
                                               "sport": [7, 9]}]}})["p"]
    rules = r.profile_rules(profile, "ip")[:-1]
    assert len(rules) == 2
    assert all(rule.count("multiport") == 2 for rule in rules)
    assert rules[0][rules[0].index("--dports") + 1].count(",") == r.MULTIPORT_MAX - 1


def test_unknown_icmp_type_is_an_error():
    profile = parse_profiles({"p": {"rules": [{"proto": "icmp", "icmp_types": ["nosuch"]}]}})["p"]
    with pytest.raises(ValueError, match="nosuch"):
        r.profile_rules(profile, "ip")


def test_long_profile_names_fit_chain_and_set_names():
    long = "a-profile-with-a-very-long-name"
    assert len(r.profile_chain(long)) <= 28 and len(r.to_set(long, "ip6")) <= 31
    assert r.profile_key(long) != r.profile_key(long + "x")
    assert r.set_key(r.to_set(long, "ip")) == r.profile_key(long)
    assert r.set_family(r.to_set(long, "ip6")) == "ip6" and r.set_family(r.src_set("ip")) == "ip"
    assert r.set_key(r.vm_set("ip")) is None


def test_skeleton_dispatch_is_one_rule_per_profile_not_per_nic():
    sk = r.skeleton(PROFILES)
    to = sk.chains[("ip", "filter")][r.TO]
    assert len(to) == 1 + len(PROFILES)
    assert to[0] == ["-m", "physdev", "--physdev-is-bridged", "-j", r.BRIDGED]
    assert set(sk.sets) >= {"snf-vm4", "snf-src6", "snf-br4", "snf-to4-limited"}
    assert all(name.startswith(r.PREFIX) for name in sk.sets)


def test_routed_plan_uses_sets_a_mac_rule_and_arp():
    plan = r.nic_plan(nic(mode="routed", tap="tap1"))
    i4, i6 = r.index_element("tap1", "ip"), r.index_element("tap1", "ip6")
    assert plan.elements == {
        ("snf-vm4", i4), ("snf-vm6", i6),
        ("snf-src4", "192.0.2.10,tap1"), ("snf-src6", "2001:db8::10,tap1"),
        ("snf-src6", "fe80::ff:fe00:10,tap1"),
        ("snf-to4-limited", i4), ("snf-to6-limited", i6)}
    assert plan.group & r.PROFILE_MASK == r.profile_group("limited")
    assert plan.group & 0xFF == r.mac_bucket("tap1") and r.is_managed_group(plan.group)
    assert plan.mac_rules["ip"] == ["-i", "tap1", "-m", "mac", "!", "--mac-source", MAC,
                                    "-j", "DROP"]
    assert plan.arp_chain[0] == ["--source-mac", "!", MAC, "-j", "DROP"]
    assert ["-s", "0.0.0.0", "-j", "RETURN"] in plan.arp_chain and plan.arp_chain[-1] == ["-j", "DROP"]
    assert not plan.eb_chain and not plan.bridged_rules and not plan.needs_br_netfilter


def test_bridged_plan_is_ebtables_plus_a_physdev_rule():
    plan = r.nic_plan(nic(mac_prefix=("02:00:00:00:00:00", "ff:ff:f0:00:00:00")))
    # physdev: elements say who uses a profile; -m set never matches them, the rule does
    assert plan.elements == {("snf-br4", r.index_element("tap0", "ip")),
                             ("snf-to4-limited", r.index_element("tap0", "ip", True)),
                             ("snf-to6-limited", r.index_element("tap0", "ip6", True))}
    assert plan.group is None
    assert plan.bridged_rules["ip6"][-1] == "snf-profile_limited"
    assert plan.needs_br_netfilter
    assert plan.eb_chain[0] == ["-s", "!", MAC, "-j", "DROP"] and plan.eb_chain[-1] == ["-j", "DROP"]
    assert ["-p", "IPv6", "--ip6-src", "fe80::ff:fe00:10", "-j", "RETURN"] in plan.eb_chain
    assert plan.eb_prv == ["-o", "tap0", "-s", "!", "02:00:00:00:00:00/ff:ff:f0:00:00:00",
                           "-j", "DROP"]
    assert not r.nic_plan(nic(profile=None)).needs_br_netfilter


def test_no_ipv4_means_no_arp_and_no_ipv4():
    bridged = r.nic_plan(nic(ipv4=()))
    assert not any("ARP" in rule or "IPv4" in rule for rule in bridged.eb_chain)
    routed = r.nic_plan(nic(mode="routed", ipv4=()))
    assert routed.arp_chain == [["-j", "DROP"]]
    assert ("snf-vm4", r.index_element("tap0", "ip")) in routed.elements
    assert not any(s == "snf-src4" for s, _ in routed.elements)


@pytest.mark.parametrize("change, message", [
    ({"mac": "nope"}, "bad MAC"), ({"ipv4": ("2001:db8::1",)}, "not an IPv4"),
    ({"ipv4": ("300.1.1.1",)}, "bad IPv4"), ({"mode": "openvswitch"}, "no firewall"),
    ({"tap": "bad name"}, "bad tap name")])
def test_bad_nics_are_value_errors(change, message):
    with pytest.raises(ValueError, match=message):
        r.nic_plan(nic(**change))


SAVED = """# Generated by ebtables-save
*filter
:INPUT ACCEPT
-A INPUT -j someone-else
*nat
:PREROUTING ACCEPT
:POSTROUTING ACCEPT
:snf-from RETURN
:snf-from.t RETURN
:snf-from.ta RETURN
:snf-from.tap RETURN
:snf-from_tap0 RETURN
:snf-prv RETURN
:snf-prv.t RETURN
:snf-prv.ta RETURN
:snf-prv.tap RETURN
:other RETURN
-A PREROUTING -j snf-from
-A PREROUTING -j other
-A POSTROUTING -j snf-prv
-A snf-from -i t+ -j snf-from.t
-A snf-from.t -i ta+ -j snf-from.ta
-A snf-from.ta -i tap+ -j snf-from.tap
-A snf-from.tap -i tap0 -j snf-from_tap0
-A snf-from_tap0 -s ! 02:00:00:00:00:10 -j DROP
-A snf-prv -o t+ -j snf-prv.t
-A snf-prv.t -o ta+ -j snf-prv.ta
-A snf-prv.ta -o tap+ -j snf-prv.tap
-A snf-prv.tap -s ! 02:00:00:00:00:00/ff:ff:f0:00:00:00 -o tap0 -j DROP
-A other -j ACCEPT
"""


def test_parse_save_keeps_only_ours():
    state = l2.parse_save(SAVED, "nat")
    assert set(state.chains) == {"snf-from", "snf-from.t", "snf-from.ta", "snf-from.tap",
                                 "snf-from_tap0", "snf-prv", "snf-prv.t", "snf-prv.ta",
                                 "snf-prv.tap"}
    assert state.jumps == [("PREROUTING", "-j snf-from"), ("POSTROUTING", "-j snf-prv")]
    assert state.tap_chains() == {"tap0"}
    assert l2.l2_tree(state, "snf-from", "-i").taps == l2.l2_tree(state, "snf-prv", "-o").taps == {
        "tap0"}


def test_ebtables_removal_of_the_last_tap_removes_the_skeleton_in_one_batch():
    lines = l2.eb_apply_lines(l2.parse_save(SAVED, "nat"), "tap0", None)
    assert lines[0] == "*nat"
    assert lines.index("-D snf-from.tap -i tap0 -j snf-from_tap0") < lines.index(
        "-X snf-from_tap0")
    # the path is cut at the top first, then the emptied nodes go, deepest first
    assert lines.index("-D snf-from -i t+ -j snf-from.t") < lines.index(
        "-D snf-from.ta -i tap+ -j snf-from.tap") < lines.index("-X snf-from.tap") < lines.index(
        "-X snf-from.t")
    assert "-D PREROUTING -j snf-from" in lines and lines[-1] == "-X snf-prv"
    assert not any(line.startswith("-F snf-from") and line != "-F snf-from_tap0"
                   for line in lines)   # ebtables-nft-restore refuses -X after that
    assert not any("other" in line for line in lines)


def test_ebtables_fresh_tap_creates_the_skeleton_and_a_second_tap_does_not():
    plan = r.nic_plan(nic(tap="tap1", profile=None))
    fresh = l2.eb_apply_lines(l2.L2State(), "tap1", plan)
    assert ":snf-from RETURN" in fresh and "-I PREROUTING 1 -j snf-from" in fresh
    assert ":snf-prv RETURN" not in fresh and fresh[-1] == "-I PREROUTING 1 -j snf-from"
    # nodes wired deepest first: the path is complete before the root reaches it
    assert fresh.index("-A snf-from.tap -i tap1 -j snf-from_tap1") < fresh.index(
        "-A snf-from.ta -i tap+ -j snf-from.tap") < fresh.index("-A snf-from -i t+ -j snf-from.t")
    second = l2.eb_apply_lines(l2.parse_save(SAVED, "nat"), "tap1", plan)
    assert ":snf-from RETURN" not in second and "-A snf-from.tap -i tap1 -j snf-from_tap1" in second
    assert not any(line.startswith((":snf-from.", "-D")) for line in second)
    assert l2.eb_apply_lines(l2.parse_save(SAVED, "nat"), "tap9", None) == []


def test_ebtables_reapply_flushes_the_tap_chain_atomically():
    plan = r.nic_plan(nic(profile=None))
    lines = l2.eb_apply_lines(l2.parse_save(SAVED, "nat"), "tap0", plan)
    assert "-F snf-from_tap0" in lines and "-X snf-from_tap0" not in lines
    assert not any("-i tap0 -j snf-from_tap0" in line for line in lines)   # keeps its place
    assert "-D POSTROUTING -j snf-prv" in lines       # tap0 left its private network
    assert "-X snf-prv.t" in lines and "-X snf-from.t" not in lines


def _restore(state, lines):
    """What ebtables-restore --noflush makes of ``state`` with ``lines`` (our chains only)."""
    chains = {name: list(rules) for name, rules in state.chains.items()}
    for line in lines[1:]:
        op, _, rest = line.partition(" ")
        if op.startswith(":"):
            chains.setdefault(op[1:], [])
        elif op == "-A" and not rest.startswith(("PREROUTING", "POSTROUTING")):
            chain, rule = rest.split(" ", 1)
            chains[chain].append(rule)
        elif op == "-D" and not rest.startswith(("PREROUTING", "POSTROUTING")):
            chain, rule = rest.split(" ", 1)
            chains[chain].remove(rule)
        elif op == "-F":
            chains[rest] = []
        elif op == "-X":
            assert chains.pop(rest) == [], f"{rest} deleted while not empty"
            assert not any(rule.endswith(f"-j {rest}") for rules in chains.values()
                           for rule in rules), f"{rest} deleted while referenced"
    return l2.L2State(chains, [("PREROUTING", "-j snf-from")] if "snf-from" in chains else [])


def _rules_met(state, iface):
    """How many dispatch rules a frame from ``iface`` meets until it reaches its tap chain."""
    def walk(chain):
        met = 0
        for rule in state.chains[chain]:
            met += 1
            name, target = l2.rule_iface(rule, "-i"), rule.split()[-1]
            if name == iface:
                return met, True
            if name.endswith("+") and iface.startswith(name[:-1]):
                below, found = walk(target)
                met += below
                if found:
                    return met, True
        return met, False
    return walk("snf-from")


def test_a_frame_meets_a_few_rules_per_character_of_its_tap_whatever_the_number_of_taps():
    taps = [f"tap{i}" for i in range(1000)]
    state = l2.L2State()
    for tap in reversed(taps):
        state = _restore(state, l2.eb_apply_lines(state, tap, r.nic_plan(nic(tap=tap, profile=None))))
    assert l2.l2_tree(state, "snf-from", "-i").taps == set(taps)
    worst = max(_rules_met(state, tap) for tap in taps)
    assert worst[1] and worst[0] <= 3 + 20 * 3     # t, ta, tap, then at most 20 per digit
    assert _rules_met(state, "eth0") == (1, False)  # other ports: one rule
    # the same taps in any order give the same chains (rule order aside)
    again = l2.L2State()
    for tap in taps:
        again = _restore(again, l2.eb_apply_lines(again, tap, r.nic_plan(nic(tap=tap, profile=None))))
    assert {k: sorted(v) for k, v in again.chains.items()} == {
        k: sorted(v) for k, v in state.chains.items()}
    for tap in taps:
        state = _restore(state, l2.eb_apply_lines(state, tap, None))
    assert state.chains == {}


LINEAR_SAVED = """*nat
:PREROUTING ACCEPT
:POSTROUTING ACCEPT
:snf-from RETURN
:snf-from_tap0 RETURN
:snf-from_tap1 RETURN
:snf-prv RETURN
-A PREROUTING -j snf-from
-A POSTROUTING -j snf-prv
-A snf-from -i tap0 -j snf-from_tap0
-A snf-from -i tap1 -j snf-from_tap1
-A snf-from_tap0 -j DROP
-A snf-from_tap1 -j DROP
-A snf-prv -s ! 02:00:00:00:00:00/ff:ff:f0:00:00:00 -o tap0 -j DROP
"""


def test_rules_of_the_layout_before_the_tree_are_found_and_moved_into_it():
    state = l2.parse_save(LINEAR_SAVED, "nat")
    plan = r.nic_plan(nic(tap="tap0", profile=None))
    moved = _restore(state, l2.eb_apply_lines(state, "tap0", plan))
    assert moved.chains["snf-from"] == ["-i tap1 -j snf-from_tap1", "-i t+ -j snf-from.t"]
    assert moved.chains["snf-from.tap"] == ["-i tap0 -j snf-from_tap0"]
    assert "snf-prv" not in moved.chains          # tap0 left its private network
    gone = _restore(state, l2.eb_apply_lines(state, "tap0", None))
    assert gone.chains["snf-from"] == ["-i tap1 -j snf-from_tap1"]
    assert _restore(gone, l2.eb_apply_lines(gone, "tap1", None)).chains == {}


def test_a_node_left_unwired_by_a_change_cut_short_is_wired_again():
    state = l2.parse_save(SAVED.replace("-A snf-from -i t+ -j snf-from.t\n", ""), "nat")
    lines = l2.eb_apply_lines(state, "tap1", r.nic_plan(nic(tap="tap1", profile=None)))
    assert "-A snf-from -i t+ -j snf-from.t" in lines
    assert not any(line.startswith(":snf-from.") for line in lines)   # the chains are there


def test_tree_read_tells_wired_nodes_and_placed_taps_from_the_rules():
    tree = iftree.read("b", ["b", "b.t", "b.ta"], [
        ("b", "t+", "b.t", 1), ("b", "tap0", "x", 2), ("b.ta", "tap", "x", 3)])
    assert tree.nodes == {"t", "ta"} and tree.wired == {"t"}       # b.ta is not reached
    assert tree.taps == {"tap0", "tap"} and tree.placed == {"tap"}  # tap0: in the base
    assert tree.of("tap0") == [("b", 2)] and tree.wire_of("t") == [("b", 1)]
    assert tree.needed("tap", keep=False) and not iftree.read("b", ["b"], []).needed("a", False)


def test_tree_change_orders_nodes_for_a_safe_walk():
    change = iftree.change({"t", "ta", "tap", "tap1"}, {"t", "ta", "tap1"}, {"tap2", "tap34"})
    assert change.create == ("tap3",) and change.wire == ("tap3", "tap")
    assert change.unwire == ("tap1",) and change.delete == ("tap1",)
    assert iftree.home("snf-from", "tap34") == "snf-from.tap3"
    assert iftree.home("snf-from", "a") == "snf-from"


ARP_LIST = """Chain INPUT (policy ACCEPT)
-j snf-from 

Chain OUTPUT (policy ACCEPT)
-j mangle -o tap5 --opcode 1 --mangle-ip-s 10.0.0.1 

Chain snf-from (1 references)
-j snf-from.t -i t+ 

Chain snf-from.t (1 references)
-j snf-from.ta -i ta+ 

Chain snf-from.ta (1 references)
-j snf-from.tap -i tap+ 

Chain snf-from.tap (1 references)
-j snf-from_tap1 -i tap1 

Chain snf-from_tap1 (1 references)
-j DROP ! --src-mac 02:00:00:00:00:10 
-j DROP 
"""


def test_arptables_removal_deletes_by_full_spec_then_flushes_before_deleting():
    state = l2.parse_arp_list(ARP_LIST)
    assert state.jumps == [("INPUT", "-j snf-from")]
    cmds = l2.arp_apply_commands(state, "tap1", None)
    assert cmds == [["-D", "snf-from.tap", "-j", "snf-from_tap1", "-i", "tap1"],
                    ["-D", "snf-from", "-i", "t+", "-j", "snf-from.t"],
                    ["-D", "snf-from.t", "-i", "ta+", "-j", "snf-from.ta"],
                    ["-D", "snf-from.ta", "-i", "tap+", "-j", "snf-from.tap"],
                    ["-X", "snf-from.tap"], ["-X", "snf-from.ta"], ["-X", "snf-from.t"],
                    ["-F", "snf-from_tap1"], ["-X", "snf-from_tap1"],
                    ["-D", "INPUT", "-j", "snf-from"], ["-X", "snf-from"]]


def test_arptables_rules_of_the_layout_before_the_tree_are_deleted_where_they_are():
    linear = ARP_LIST.split("Chain snf-from (1 references)")[0] + """Chain snf-from (1 references)
-j snf-from_tap1 -i tap1 

Chain snf-from_tap1 (1 references)
-j DROP 
"""
    cmds = l2.arp_apply_commands(l2.parse_arp_list(linear), "tap1", None)
    assert cmds == [["-D", "snf-from", "-j", "snf-from_tap1", "-i", "tap1"],
                    ["-F", "snf-from_tap1"], ["-X", "snf-from_tap1"],
                    ["-D", "INPUT", "-j", "snf-from"], ["-X", "snf-from"]]


def test_arptables_reapply_is_guarded():
    plan = r.nic_plan(nic(mode="routed", tap="tap1"))
    cmds = l2.arp_apply_commands(l2.parse_arp_list(ARP_LIST), "tap1", plan)
    assert cmds[0] == ["-I", "snf-from", "1", "-i", "tap1", "-j", "DROP"]
    assert cmds[-1] == ["-D", "snf-from", "-i", "tap1", "-j", "DROP"]
    assert ["-N", "snf-from"] not in cmds and ["-I", "INPUT", "1", "-j", "snf-from"] not in cmds
    assert ["-F", "snf-from_tap1"] in cmds and ["-X", "snf-from_tap1"] not in cmds
    fresh = l2.arp_apply_commands(l2.L2State(), "tap1", plan)
    assert fresh[0] == ["-N", "snf-from"] and fresh[-1] == ["-I", "INPUT", "1", "-j", "snf-from"]
    assert fresh.index(["-A", "snf-from.tap", "-i", "tap1", "-j", "snf-from_tap1"]) < fresh.index(
        ["-A", "snf-from", "-i", "t+", "-j", "snf-from.t"])


def test_ipset_save_parsing_and_listing_lines():
    sets = r.parse_ipset_save(
        "create snf-to4-limited hash:net,iface family inet\n"
        "add snf-to4-limited 0.0.0.0/0,tap0\ncreate other hash:ip\nadd other 1.2.3.4\n"
        "create snf-src4 hash:net,iface family inet\nadd snf-src4 192.0.2.10,tap0\n")
    assert sets == {"snf-to4-limited": {"0.0.0.0/0,tap0"}, "snf-src4": {"192.0.2.10,tap0"}}
    assert r.set_lines("snf-to4-limited", sets["snf-to4-limited"]) == [
        "  set to4-limited hash:net,iface", '    "tap0" : jump profile_limited']
    assert r.set_lines("snf-src4", sets["snf-src4"])[1] == '    "tap0" 192.0.2.10'


def test_show_lowers_macs_and_drops_our_prefix_only():
    assert r.show("-i tap1 -m mac ! --mac-source AA:00:00:11:22:33 -j snf-mac") == \
        "-i tap1 -m mac ! --mac-source aa:00:00:11:22:33 -j mac"
    assert r.show("-j other-snf-x") == "-j other-snf-x"


def test_versions_name_each_table_definition():
    sk = r.skeleton(PROFILES)
    raw4, filter4 = sk.chains[("ip", "raw")], sk.chains[("ip", "filter")]
    one = r.version_element("ip", "raw", raw4)
    assert one == r.version_element("ip", "raw", dict(raw4)) and len(one.split(",")[1]) == 15
    assert one != r.version_element("ip6", "raw", raw4)
    assert r.is_version_of(one, "ip", "raw") and not r.is_version_of(one, "ip", "filter")
    changed = parse_profiles({**DEFAULT_PROFILES, "limited": {"rules": []}})
    assert r.version_element("ip", "filter", filter4) != r.version_element(
        "ip", "filter", r.skeleton(changed).chains[("ip", "filter")])
    assert r.set_lines(r.VERSIONS, {one}) == ["  set ver4 hash:net,iface", f"    {one[10:]}"]


def test_index_elements_of_many_taps_hash_apart_and_groups_are_ours():
    # ipset does not hash a hash:net,iface element's interface: 0/0,TAP elements of all
    # taps shared one bucket, and the 65th NIC failed with "Hash is full".
    for family in r.FAMILIES:
        nets = {r.index_net(f"tap{i}", family) for i in range(1000)}
        assert len(nets) == 1000
    assert r.index_element("tap0", "ip6", physdev=True).endswith(",physdev:tap0")
    assert r.nic_group(None, "tap0") & r.PROFILE_MASK == r.GROUP_BASE
    groups = {r.nic_group(p, "tap0") for p in ("protected", "limited", "unprotected", None)}
    assert len(groups) == 4 and all(r.is_managed_group(g) for g in groups)
    assert {g & 0xFF for g in groups} == {r.mac_bucket("tap0")}
    assert not r.is_managed_group(0) and not r.is_managed_group(None)
    assert r.from_rules("ip")[0][:5] == ["-m", "devgroup", "!", "--src-group",
                                         "0x73000000/0xff000000"]
    assert r.to_rules(["limited"], "ip6")[1] == [
        "-m", "devgroup", "--dst-group", f"{r.profile_group('limited'):#x}/0xffffff00",
        "-j", "snf-profile_limited"]


def test_a_packet_reaches_its_taps_mac_check_through_32_group_tests():
    """Follow the devgroup tests of snf-from and snf-mac-H as the kernel would: one bucket
    chain, whatever the number of taps, and the buckets spread the taps."""
    def matches(rule, group):
        value, mask = (int(x, 16) for x in rule[rule.index("--src-group") + 1].split("/"))
        return group & mask == value
    chains = r.skeleton(PROFILES).chains[("ip", "raw")]
    for tap in ("tap0", "tap1", "tap977"):
        group = r.nic_group("limited", tap)
        first = [x[-1] for x in chains[r.FROM][1:17] if matches(x, group)]
        assert len(first) == 1 and len(chains[first[0]]) == 16
        second = [x[-1] for x in chains[first[0]] if matches(x, group)]
        assert second == [r.mac_chain(tap)] and ("raw", second[0]) in r.TAP_RULE_CHAINS
    buckets = [r.mac_bucket(f"tap{i}") for i in range(1000)]
    assert max(buckets.count(b) for b in set(buckets)) <= 12


def test_index_sets_list_taps_without_their_nets():
    element = r.index_element("tap3", "ip")
    assert r.set_lines("snf-vm4", {element}) == ["  set vm4 hash:net,iface", '    "tap3"']


def test_routed_sources_carry_the_link_mark_and_one_mangle_rule_applies_it():
    plan = r.nic_plan(nic(mode="routed", tap="tap1", route_mark=0x534E0064))
    assert ("snf-src4", "192.0.2.10,tap1 skbmark 0x534e0064") in plan.elements
    assert r.element_key("192.0.2.10,tap1 skbmark 0x534e0064") == "192.0.2.10,tap1"
    assert r.element_tap("192.0.2.10,tap1 skbmark 0x534e0064") == ("tap1", False)
    assert r.create_set("snf-src6").endswith("family inet6 skbinfo")
    assert not r.create_set("snf-vm4").endswith("skbinfo")
    assert r.skeleton(PROFILES).chains[("ip6", "mangle")] == {r.MARK: [
        ["-m", "devgroup", "--src-group", "0x73000000/0xff000000", "-j", "SET",
         "--map-set", "snf-src6", "src,src", "--map-mark"]]}
    sets = r.parse_ipset_save("create snf-src4 hash:net,iface family inet skbinfo\n"
                              "add snf-src4 192.0.2.10,tap1 skbmark 0x534e0064\n")
    assert sets == {"snf-src4": {"192.0.2.10,tap1 skbmark 0x534e0064"}}
    assert r.set_lines("snf-src4", sets["snf-src4"])[1] == '    "tap1" 192.0.2.10 mark 0x534e0064'


def test_source_sets_without_skbinfo_are_swapped_for_copies_with_it():
    saved = ("create snf-src4 hash:net,iface family inet hashsize 1024 maxelem 65536\n"
             "add snf-src4 192.0.2.10,tap1\n"
             "create snf-src6 hash:net,iface family inet6 skbinfo\n"
             "create snf-vm4 hash:net,iface family inet\n")
    assert r.skbinfo_upgrade(saved) == [
        "create snf-src4-new hash:net,iface family inet skbinfo",
        "add snf-src4-new 192.0.2.10,tap1", "swap snf-src4-new snf-src4", "destroy snf-src4-new"]
    assert r.skbinfo_upgrade(saved.replace("maxelem 65536", "skbinfo")) == []
