"""The nftables ruleset as data: profiles, per-tap objects, plans, listing (no kernel).

A small fake of the kernel (``Kernel``) applies the planned JSON commands to a
State the way nftables would, refusing what nftables refuses (a chain deleted
while something jumps to it, an element deleted that is not there), so plans
can be checked for idempotency and exact removal here.
"""

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snf_ganeti.ifscripts import nft_render as r
from snf_ganeti.ifscripts.default_profiles import DEFAULT_PROFILES
from snf_ganeti.ifscripts.firewall import NicFilter, parse_profiles
from snf_ganeti.ifscripts.nft import FirewallError, NftBackend, listing, read_state

pytestmark = pytest.mark.unit
PROFILES = parse_profiles(DEFAULT_PROFILES)
MAC = "02:00:00:00:00:10"
LL = "fe80::ff:fe00:10"


def nic(tap="tap0", mode="bridged", profile="limited", **kw):
    fields = dict(tap=tap, mode=mode, mac=MAC, ipv4=("192.0.2.10",),
                  ipv6=("2001:db8::10", LL), profile=profile)
    return NicFilter(**{**fields, **kw})


class Kernel:
    """Enough of nftables' semantics for our commands; each run is all-or-nothing."""

    def __init__(self):
        self.state = r.State()

    def run(self, cmds):
        state = copy.deepcopy(self.state)
        for cmd in cmds:
            (verb, obj), = cmd.items()
            (kind, body), = obj.items()
            getattr(self, f"_{kind}")(state, verb, body)
        self.state = state

    @staticmethod
    def _table(state, verb, body):
        family = body["family"]
        if verb == "add":
            state.tables.add(family)
        else:
            state.tables.discard(family)
            for objects in (state.maps, state.chains):
                for key in [k for k in objects if k[0] == family]:
                    del objects[key]

    @staticmethod
    def _map(state, verb, body, kind="map"):
        assert verb == "add" and body["family"] in state.tables
        types = [body["type"], body.get("map")]
        state.maps.setdefault((body["family"], body["name"]), {
            "kind": kind, "type": " : ".join(t for t in types if t), "elems": []})

    def _set(self, state, verb, body):
        self._map(state, verb, body, "set")

    @staticmethod
    def _chain(state, verb, body):
        key = (body["family"], body["name"])
        spec = {k: body[k] for k in ("type", "hook", "prio", "policy") if k in body}
        if verb == "add":
            assert body["family"] in state.tables
            state.chains.setdefault(key, {"spec": spec, "rules": []})
        elif verb == "flush":
            state.chains[key]["rules"] = []
        else:
            assert key in state.chains and key not in r.jump_targets(state), f"busy: {key}"
            del state.chains[key]

    @staticmethod
    def _rule(state, verb, body):
        assert verb == "add"
        state.chains[(body["family"], body["chain"])]["rules"].append(
            {"expr": body["expr"], "comment": None})

    @staticmethod
    def _element(state, verb, body):
        elems = state.maps[(body["family"], body["name"])]["elems"]
        for elem in body["elem"]:
            key, value = elem if isinstance(elem, list) else (elem, None)
            present = [e for e in elems if e[0] == key]
            if verb == "add":
                assert present in ([], [(key, value)]), f"busy: {key}"
                if not present:
                    elems.append((key, value))
            else:
                assert present, f"no such element: {key}"
                elems.remove(present[0])
        for value in [v for _, v in elems if v]:
            target = (body["family"], value["jump"]["target"])
            assert target in state.chains, f"no such chain: {target}"


def set_up(profiles=PROFILES):
    kernel = Kernel()
    kernel.run(r.setup_commands(kernel.state, profiles))
    return kernel


def rules_text(chain):
    return [listing_rule(rule) for rule in chain.rules]


def listing_rule(expr):
    state = r.State(tables={"inet"}, chains={("inet", "c"): {"spec": {}, "rules": [
        {"expr": expr, "comment": None}]}})
    return listing(state).splitlines()[-1].strip()


# --- profiles ----------------------------------------------------------------------------

def test_profiles_match_icmpv6_as_icmpv6_and_keep_neighbour_discovery():
    for family in r.PROFILE_FAMILIES:
        text = rules_text(r.Chain(family, "p", r.profile_rules(PROFILES["protected"], family)))
        icmpv6 = [line for line in text if "ipv6-icmp" in line]
        assert len(icmpv6) == 1 and "nd-neighbor-solicit" in icmpv6[0]
        assert "nd-router-advert" in icmpv6[0] and "echo-request" in icmpv6[0]
        assert text[-1] == "drop"


def test_inet_profile_chain_in_order():
    text = rules_text(r.Chain("inet", "p", r.profile_rules(PROFILES["limited"], "inet")))
    assert text[:5] == [
        "meta l4proto tcp tcp flags & (fin|syn|rst|ack) != syn accept",
        "meta l4proto tcp tcp dport { 22, 3389 } accept",
        "meta l4proto udp udp sport 53 accept",
        "meta nfproto ipv4 meta l4proto icmp accept",
        "meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type { destination-unreachable, "
        "echo-reply, echo-request, nd-neighbor-advert, nd-neighbor-solicit, nd-redirect, "
        "nd-router-advert, packet-too-big, parameter-problem, time-exceeded } accept"]
    assert text[5:] == ["drop"]


def test_bridge_profiles_let_arp_through_and_name_ethertypes():
    limited = rules_text(r.Chain("bridge", "p", r.profile_rules(PROFILES["limited"], "bridge")))
    assert limited[0] == "ether type arp accept"
    assert "ether type ip meta l4proto icmp accept" in limited
    unprotected = rules_text(r.Chain("bridge", "p", r.profile_rules(PROFILES["unprotected"],
                                                                    "bridge")))
    assert unprotected == ["accept"]


def test_skeleton_has_one_chain_per_profile_and_family_and_a_vmap_per_hook():
    chains = {(c.family, c.name): c for c in r.skeleton(PROFILES)}
    for name in PROFILES:
        assert {("bridge", f"profile_{name}"), ("inet", f"profile_{name}")} <= set(chains)
    assert not any(f == "arp" and n.startswith("profile_") for f, n in chains)
    hooks = {k: c for k, c in chains.items() if c.hook}
    assert {(f, c.hook) for (f, _), c in hooks.items()} == {
        ("arp", "input"), ("bridge", "prerouting"), ("bridge", "forward"),
        ("bridge", "postrouting"), ("inet", "prerouting"), ("inet", "forward")}
    assert all(len(c.rules) == 1 and "vmap" in c.rules[0][0] for c in hooks.values())
    assert chains[("inet", "prerouting")].prio == -300   # before conntrack


# --- one NIC -----------------------------------------------------------------------------

def test_bridged_nic_objects():
    objects = r.nic_objects(nic(mac_prefix=("02:00:00:00:00:00", "ff:ff:f0:00:00:00")))
    assert {(c.family, c.name) for c in objects.chains} == {("bridge", "from_tap0"),
                                                           ("bridge", "prv_tap0")}
    assert set(objects.elements) == {
        r.Element("bridge", "from_vm", "tap0", "from_tap0"),
        r.Element("bridge", "to_prv", "tap0", "prv_tap0"),
        r.Element("bridge", "to_vm", "tap0", "profile_limited")}
    from_vm = rules_text(objects.chains[0])
    assert from_vm == [
        f"ether saddr != {MAC} drop",
        "ether type != { arp, ip, ip6 } drop",
        f"arp saddr ether != {MAC} drop",
        "arp saddr ip != { 0.0.0.0, 192.0.2.10 } drop",
        "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return",
        "ip saddr != 192.0.2.10 drop",
        "ip6 saddr :: ip6 daddr ff02::/16 icmpv6 type { mld2-listener-report, "
        "nd-neighbor-solicit, nd-router-solicit } return",
        f"ip6 saddr != {{ 2001:db8::10, {LL} }} drop"]
    assert rules_text(objects.chains[1]) == [
        "ether saddr & ff:ff:f0:00:00:00 != 02:00:00:00:00:00 drop"]


def test_routed_nic_objects_without_a_profile_or_ipv4():
    objects = r.nic_objects(nic(mode="routed", profile=None, ipv4=(), mac="02:00:00:00:00:AB"))
    chains = {(c.family, c.name): rules_text(c) for c in objects.chains}
    assert chains == {
        ("inet", "from_tap0"): [
            "ether saddr != 02:00:00:00:00:ab drop", "meta nfproto ipv4 drop",
            "ip6 saddr :: ip6 daddr ff02::/16 icmpv6 type { mld2-listener-report, "
            "nd-neighbor-solicit, nd-router-solicit } return",
            f"ip6 saddr != {{ 2001:db8::10, {LL} }} drop"],
        ("arp", "from_tap0"): ["drop"]}
    assert {e.map for e in objects.elements} == {"from_vm"}   # no profile: nothing toward it


def test_bridged_nic_with_no_address_sends_nothing():
    chain = r.nic_objects(nic(ipv4=(), ipv6=())).chains[0]
    assert rules_text(chain) == [f"ether saddr != {MAC} drop", "drop"]


@pytest.mark.parametrize("changes, problem", [
    ({"mac": "02:00:00:00:10"}, "bad MAC"), ({"ipv4": ("2001:db8::1",)}, "not an IPv4"),
    ({"ipv6": ("nonsense",)}, "does not appear"), ({"tap": "tap 0"}, "bad tap name"),
    ({"mode": "openvswitch"}, "has no firewall")])
def test_bad_filters_are_refused(changes, problem):
    with pytest.raises(ValueError, match=problem):
        r.nic_objects(nic(**changes))


def test_networks_become_prefixes():
    chain = r.nic_objects(nic(ipv4=("192.0.2.0/28", "192.0.2.77"))).chains[0]
    assert "ip saddr != { 192.0.2.0/28, 192.0.2.77 } drop" in rules_text(chain)


# --- plans against the fake kernel -------------------------------------------------------

def test_setup_twice_changes_nothing_the_second_time():
    kernel = set_up()
    assert kernel.state.tables == set(r.FAMILIES)
    assert r.setup_commands(kernel.state, PROFILES) == []


def test_setup_rewrites_only_the_changed_profile():
    kernel = set_up()
    kernel.run(r.apply_commands(kernel.state, "tap0", nic(profile="limited")))
    raw = {**DEFAULT_PROFILES, "limited": {**DEFAULT_PROFILES["limited"], "default": "accept"}}
    cmds = r.setup_commands(kernel.state, parse_profiles(raw))
    touched = {body.get("chain", body.get("name")) for cmd in cmds for obj in cmd.values()
               for kind, body in obj.items() if kind in ("chain", "rule")}
    assert touched == {"profile_limited"}
    kernel.run(cmds)
    assert r.setup_commands(kernel.state, parse_profiles(raw)) == []


def test_a_removed_profile_stays_while_a_tap_uses_it():
    kernel = set_up()
    kernel.run(r.apply_commands(kernel.state, "tap0", nic(mode="routed", profile="limited")))
    fewer = {k: v for k, v in PROFILES.items() if k != "limited"}
    kernel.run(r.setup_commands(kernel.state, fewer))
    assert ("inet", "profile_limited") in kernel.state.chains
    assert ("bridge", "profile_limited") not in kernel.state.chains
    kernel.run(r.apply_commands(kernel.state, "tap0", None))
    kernel.run(r.setup_commands(kernel.state, fewer))
    assert ("inet", "profile_limited") not in kernel.state.chains


def test_a_base_chain_with_another_priority_is_recreated():
    kernel = set_up()
    kernel.state.chains[("inet", "forward")]["spec"]["prio"] = 10
    cmds = r.setup_commands(kernel.state, PROFILES)
    assert [next(iter(c)) for c in cmds] == ["flush", "delete", "add", "add"]
    kernel.run(cmds)
    assert kernel.state.chains[("inet", "forward")]["spec"]["prio"] == 0


def test_apply_twice_equals_once_and_removal_is_exact():
    kernel = set_up()
    baseline = copy.deepcopy(kernel.state)
    kernel.run(r.apply_commands(kernel.state, "tap10", nic("tap10", mode="routed")))
    with_tap10 = copy.deepcopy(kernel.state)
    for _ in range(2):
        kernel.run(r.apply_commands(kernel.state, "tap1", nic("tap1")))
    once = copy.deepcopy(kernel.state)
    kernel.run(r.apply_commands(kernel.state, "tap1", nic("tap1")))
    assert kernel.state == once
    kernel.run(r.apply_commands(kernel.state, "tap1", None))
    assert kernel.state == with_tap10
    kernel.run(r.apply_commands(kernel.state, "tap10", None))
    assert kernel.state == baseline


def test_removal_deletes_elements_before_the_chains_they_jump_to():
    kernel = set_up()
    kernel.run(r.apply_commands(kernel.state, "tap0", nic(mode="routed")))
    cmds = r.apply_commands(kernel.state, "tap0", None)
    verbs = [(verb, kind) for cmd in cmds for verb, obj in cmd.items() for kind in obj]
    assert verbs == [("delete", "element")] * 3 + [("flush", "chain"), ("delete", "chain")] * 2


def test_apply_needs_setup_and_a_known_profile():
    with pytest.raises(ValueError, match="not set up"):
        r.apply_commands(r.State(), "tap0", nic())
    assert r.apply_commands(r.State(), "tap0", None) == []   # removal needs nothing
    with pytest.raises(ValueError, match="'gold' is not set up"):
        r.apply_commands(set_up().state, "tap0", nic(profile="gold"))
    with pytest.raises(ValueError, match="for tap1"):
        r.apply_commands(set_up().state, "tap0", nic("tap1"))


filters = st.builds(
    lambda tap, mode, profile, prefix, last: nic(
        f"tap{tap}", mode, profile, mac=f"02:00:00:00:00:{last:02x}",
        mac_prefix=("02:00:00:00:00:00", "ff:ff:f0:00:00:00") if prefix else None),
    st.integers(0, 3), st.sampled_from(["bridged", "routed"]),
    st.sampled_from([None, *PROFILES]), st.booleans(), st.integers(0, 255))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(filters, st.integers(0, 3)), max_size=12))
def test_any_sequence_converges_to_the_last_apply_of_each_tap(ops):
    kernel = set_up()
    baseline = copy.deepcopy(kernel.state)
    last = {}
    for op in ops:
        tap, value = (op.tap, op) if isinstance(op, NicFilter) else (f"tap{op}", None)
        kernel.run(r.apply_commands(kernel.state, tap, value))
        last[tap] = value
    fresh = set_up()
    for tap, value in sorted(last.items()):
        fresh.run(r.apply_commands(fresh.state, tap, value))
    assert listing(kernel.state) == listing(fresh.state)
    for tap in last:
        kernel.run(r.apply_commands(kernel.state, tap, None))
    assert kernel.state == baseline


# --- reading and listing -----------------------------------------------------------------

KERNEL_JSON = [
    {"metainfo": {"version": "1.0.6"}},
    {"table": {"family": "inet", "name": "snf_ganeti", "handle": 3}},
    {"table": {"family": "inet", "name": "other", "handle": 4}},
    {"map": {"family": "inet", "name": "to_vm", "table": "snf_ganeti", "type": "ifname",
             "handle": 3, "map": "verdict", "elem": [
                 ["tap9", {"jump": {"target": "profile_limited"}}],
                 ["tap1", {"jump": {"target": "profile_limited"}}]]}},
    {"chain": {"family": "inet", "table": "snf_ganeti", "name": "forward", "handle": 2,
               "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
    {"chain": {"family": "inet", "table": "other", "name": "x", "handle": 1}},
    {"rule": {"family": "inet", "table": "snf_ganeti", "chain": "forward", "handle": 4,
              "expr": [{"vmap": {"key": {"meta": {"key": "oifname"}}, "data": "@to_vm"}}]}},
    {"rule": {"family": "inet", "table": "snf_ganeti", "chain": "from_tap1", "handle": 5,
              "comment": "why", "expr": [
                  {"match": {"op": "!=", "left": {"payload": {"protocol": "ip6", "field": "saddr"}},
                             "right": {"set": ["fe80::1", "2001:db8::1"]}}},
                  {"counter": {"packets": 3, "bytes": 200}}, {"drop": None}]}},
]


def test_listing_is_canonical_and_ours_only():
    assert listing(read_state(KERNEL_JSON)) == (
        "table inet snf_ganeti\n"
        "  map to_vm { ifname : verdict }\n"
        '    "tap1" : jump profile_limited\n'
        '    "tap9" : jump profile_limited\n'
        "  chain forward { type filter hook forward priority 0; policy accept }\n"
        "    oifname vmap @to_vm\n"
        "  chain from_tap1\n"
        '    ip6 saddr != { 2001:db8::1, fe80::1 } counter drop comment "why"\n')


def test_tap_objects_are_found_by_exact_name():
    state = read_state(KERNEL_JSON)
    assert r.tap_objects(state, "tap1") == ([("inet", "from_tap1")], [("inet", "to_vm")])
    assert r.tap_objects(state, "tap") == ([], [])


# --- the backend, with a scripted libnftables --------------------------------------------

class ScriptedNft:
    """Answers `list` from KERNEL_JSON-like objects; fails the first ``failures`` commits."""

    def __init__(self, objects, failures=0, error="internal:0:0-0: Error: Could not process "
                                                  "rule: No such file or directory\n\n"):
        self.objects, self.failures, self.error, self.commits = objects, failures, error, []

    def json_cmd(self, request):
        (cmd,) = request["nftables"][:1]
        if "list" in cmd:
            kind = next(iter(cmd["list"]))
            if kind in ("map", "set") and not any(kind in o for o in self.objects):
                return -1, "", "internal:0:0-0: Error: No such file or directory\n"
            return 0, {"nftables": copy.deepcopy(self.objects)}, ""
        self.commits.append(request["nftables"])
        if self.failures:
            self.failures -= 1
            return -1, "", self.error
        return 0, "", ""


def test_backend_retries_then_reports_one_line():
    nft = ScriptedNft(KERNEL_JSON, failures=5)
    with pytest.raises(FirewallError) as caught:
        NftBackend(nft).apply("tap1", None)
    assert str(caught.value) == ("nftables tap1: Could not process rule: No such file or "
                                 "directory")
    assert len(nft.commits) == 3
    nft = ScriptedNft(KERNEL_JSON, failures=1)
    NftBackend(nft).apply("tap1", None)
    assert len(nft.commits) == 2


def test_backend_reports_plan_problems_as_firewall_errors():
    with pytest.raises(FirewallError, match="^nftables tap0: the bridge table snf_ganeti is not"):
        NftBackend(ScriptedNft([])).apply("tap0", nic())
    assert NftBackend(ScriptedNft(KERNEL_JSON)).taps() == {"tap1", "tap9"}


def test_unchecked_addresses_keep_the_mac_check():
    for mode in ("bridged", "routed"):
        chains = r.nic_objects(nic(mode=mode, ipv4=None, ipv6=None)).chains
        text = json.dumps([c.rules for c in chains])
        assert '"field": "saddr"}}, "right": "' + MAC.lower() in text.lower()
        assert '"protocol": "ip", "field": "saddr"' not in text
        assert '"protocol": "ip6", "field": "saddr"' not in text
        assert '"saddr ip"' not in text


def test_routed_from_chain_ends_by_setting_the_link_mark():
    objects = r.nic_objects(nic(mode="routed", route_mark=0x534E0064))
    chain = {c.name: rules_text(c) for c in objects.chains if c.family == "inet"}["from_tap0"]
    assert chain[-1] == f"meta mark set {0x534E0064:#x}"
    bridged = r.nic_objects(nic(mode="bridged", route_mark=None))
    assert not any("mark" in rule for c in bridged.chains for rule in rules_text(c))
