"""Firewall backends in namespaces: profiles, anti-spoofing, MAC prefixes, idempotency.

Topology per mode (built once per module, profiles applied in between):

- bridged: ``vm``(eth0) -- tap0 [br0 in ``hv``] outbr -- (eth0)``out``, one L2 segment;
- routed: ``vm``(eth0) -- tap0 [``hv`` routes, proxy ARP] uplink0 -- (eth0)``out``.

Every address exists only inside the namespaces created here. The backend runs
in ``hv`` through tests/support/firewall_driver.py, as the NIC script would.
"""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from snf_ganeti.ifscripts import iptables_render as r
from snf_ganeti.ifscripts.plan import link_local
from tests.fixtures import netns as netns_mod

pytestmark = pytest.mark.integration

BACKENDS = ["nftables", "iptables"]
DRIVER = str(Path(__file__).resolve().parents[1] / "support" / "firewall_driver.py")
PROFILES = ["protected", "limited", "unprotected", None]
VM_MAC, OUT_MAC, TAP_MAC = "02:00:00:00:00:10", "02:00:00:00:00:20", "cc:47:52:4e:45:54"
OTHER_MAC = "02:00:00:00:00:99"
VM4, VM6, VM_LL = "203.0.113.10", "2001:db8:100::10", str(link_local(VM_MAC))
OTHER4, OTHER6 = "203.0.113.99", "2001:db8:100::99"
PRIVATE = ("02:00:00:00:00:00", "ff:ff:f0:00:00:00")


def nic(mode, profile, tap="tap0", mac=VM_MAC, mac_prefix=None):
    return {"tap": tap, "mode": mode, "mac": mac, "ipv4": [VM4], "ipv6": [VM6, VM_LL],
            "profile": profile, "mac_prefix": mac_prefix,
            "bridge": "br0" if mode == "bridged" else None}


def run_driver(ns, *args, **kwargs):
    return ns.run(sys.executable, DRIVER, *args, **kwargs).stdout


def firewall(ns, backend, *ops):
    """Run backend ops in ``ns``; the results, failing the test on any error."""
    results = json.loads(run_driver(ns, "backend", input=json.dumps(
        {"backend": backend, "ops": [list(op) for op in ops]}), timeout=300))
    errors = [r["error"] for r in results if "error" in r]
    assert not errors, errors
    return [r["ok"] for r in results]


@dataclass
class Topology:
    backend: str
    mode: str
    hv: object
    vm: object
    out: object
    out4: str
    out6: str

    def fw(self, *ops):
        return firewall(self.hv, self.backend, *ops)

    def apply(self, profile, **kwargs):
        self.fw(("apply", "tap0", nic(self.mode, profile, **kwargs)))

    def flush_neighbours(self):
        for ns, dev in [(self.vm, "eth0"), (self.out, "eth0")] + (
                [(self.hv, "tap0"), (self.hv, "uplink0")] if self.mode == "routed" else []):
            ns.run("ip", "neigh", "flush", "dev", dev)


def _sh(ns, *commands):
    for command in commands:
        ns.run(*command.split())


def _ipv6_now(ns, *devs):
    # No duplicate address detection: addresses usable at once, no tentative second.
    for dev in devs:
        ns.run("sysctl", "-qw", f"net.ipv6.conf.{dev}.accept_dad=0")


def _bridged(factory):
    hv, vm, out = factory("hv"), factory("vm"), factory("out")
    factory.veth(hv, vm, "tap0", "eth0")
    factory.veth(hv, out, "outbr", "eth0")
    _ipv6_now(hv, "tap0", "outbr")
    _sh(hv, "ip link add br0 type bridge", "ip link set tap0 master br0",
        "ip link set outbr master br0", "ip link set br0 up", "ip link set tap0 up",
        "ip link set outbr up")
    for ns, mac, four, six in ((vm, VM_MAC, VM4, VM6), (out, OUT_MAC, "203.0.113.20",
                                                          "2001:db8:100::20")):
        _ipv6_now(ns, "eth0")
        _sh(ns, f"ip link set eth0 address {mac}", "ip link set eth0 up",
            f"ip addr add {four}/24 dev eth0", f"ip addr add {six}/64 dev eth0 nodad")
    return hv, vm, out, "203.0.113.20", "2001:db8:100::20"


def _routed(factory):
    hv, vm, out = factory("hv"), factory("vm"), factory("out")
    factory.veth(hv, vm, "tap0", "eth0")
    factory.veth(hv, out, "uplink0", "eth0")
    _ipv6_now(hv, "tap0", "uplink0")
    # rp_filter off: only the firewall may stop spoofed sources here.
    _sh(hv, f"ip link set tap0 address {TAP_MAC}", "ip link set tap0 addrgenmode none",
        "ip link set tap0 up", "ip addr add fe80::1/64 dev tap0",
        "ip link set uplink0 up", "ip addr add 203.0.113.129/25 dev uplink0",
        "ip addr add 2001:db8:200::1/64 dev uplink0 nodad",
        f"ip route add {VM4}/32 dev tap0", f"ip -6 route add {VM6}/128 dev tap0",
        "ip route add default via 203.0.113.130",
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1",
        "sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.tap0.rp_filter=0",
        "sysctl -qw net.ipv4.conf.tap0.proxy_arp=1 net.ipv4.neigh.tap0.proxy_delay=0")
    _ipv6_now(vm, "eth0")
    _sh(vm, f"ip link set eth0 address {VM_MAC}", "ip link set eth0 up",
        f"ip addr add {VM4}/25 dev eth0", "ip route add default via 203.0.113.1",
        f"ip addr add {VM6}/64 dev eth0 nodad", "ip -6 route add default via fe80::1 dev eth0")
    _ipv6_now(out, "eth0")
    _sh(out, f"ip link set eth0 address {OUT_MAC}", "ip link set eth0 up",
        "ip addr add 203.0.113.130/25 dev eth0", "ip route add 203.0.113.0/25 via 203.0.113.129",
        "ip addr add 2001:db8:200::2/64 dev eth0 nodad",
        "ip -6 route add 2001:db8:100::/64 via 2001:db8:200::1")
    return hv, vm, out, "203.0.113.130", "2001:db8:200::2"


def _serve(ns, *specs):
    proc = ns.popen(sys.executable, DRIVER, "serve", *specs, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"


@pytest.fixture(scope="module", params=[(b, m) for b in BACKENDS for m in ("bridged", "routed")],
                ids=lambda p: "-".join(p))
def topo(request):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    backend, mode = request.param
    factory = netns_mod.NetnsFactory()
    try:
        hv, vm, out, out4, out6 = (_bridged if mode == "bridged" else _routed)(factory)
        _serve(vm, "tcp:22", "tcp:80", "tcp:3389")
        _serve(out, "tcp:8080", "udp:53", "udp:123")
        topology = Topology(backend, mode, hv, vm, out, out4, out6)
        topology.fw(("setup",))
        yield topology
        topology.fw(("teardown",))
    finally:
        problems = factory.cleanup()
        assert not problems, problems


def probe(ns, *specs):
    return json.loads(run_driver(ns, "probe", json.dumps(specs)))


def neighbour_resolved(ns, address, dev):
    entries = json.loads(ns.run("ip", "-j", "neigh", "show", "to", address, "dev", dev).stdout)
    return any("lladdr" in e and not {"FAILED", "INCOMPLETE"} & set(e.get("state", []))
               for e in entries)


def expected(profile):
    """What reaches the VM under each profile (stateless: replies are judged by port or flag)."""
    open_ports = {"protected": (), "limited": (22, 3389)}.get(profile, (22, 80, 3389))
    stateless = profile in ("protected", "limited")
    return {**{f"new tcp {p}": "ok" if p in open_ports else "timeout" for p in (22, 80, 3389)},
            "echo to vm": "ok", "tcp reply": "ok", "udp reply from 53": "ok",
            "udp reply from 123": "timeout" if stateless else "ok", "echo from vm": "ok",
            "vm resolved": True, "vm was resolved": True}


@pytest.mark.parametrize("version", [4, 6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p or "no-profile")
def test_profile_decides_what_reaches_the_vm(topo, profile, version):
    vm_addr, out_addr = (VM4, topo.out4) if version == 4 else (VM6, topo.out6)
    topo.apply(profile)
    topo.flush_neighbours()
    inbound = probe(topo.out, *[{"kind": "tcp", "host": vm_addr, "port": p} for p in (22, 80, 3389)],
                    {"kind": "ping", "host": vm_addr})
    outbound = probe(topo.vm, {"kind": "tcp", "host": out_addr, "port": 8080},
                     {"kind": "udp", "host": out_addr, "port": 53},
                     {"kind": "udp", "host": out_addr, "port": 123},
                     {"kind": "ping", "host": out_addr})
    if topo.mode == "bridged":  # neighbour discovery across the bridge, both ways
        vm_peer, vm_side = (out_addr, (topo.out, vm_addr, "eth0"))
    else:  # the VM finds its router, the node finds the VM
        vm_peer, vm_side = ("203.0.113.1" if version == 4 else "fe80::1"), (topo.hv, vm_addr, "tap0")
    got = dict(zip(["new tcp 22", "new tcp 80", "new tcp 3389", "echo to vm", "tcp reply",
                    "udp reply from 53", "udp reply from 123", "echo from vm"], inbound + outbound))
    got["vm resolved"] = neighbour_resolved(topo.vm, vm_peer, "eth0")
    got["vm was resolved"] = neighbour_resolved(*vm_side)
    assert got == expected(profile)


def _udp(name, src_mac, src_ip, dst_ip, dst_mac):
    return {"kind": "udp", "marker": name, "src_mac": src_mac, "src_ip": src_ip,
            "dst_ip": dst_ip, "dst_mac": dst_mac}


def _arp(dst_mac, sha, spa, tpa, src_mac=VM_MAC):
    return {"kind": "arp", "dst_mac": dst_mac, "src_mac": src_mac, "sha": sha, "spa": spa,
            "tpa": tpa}


def sniffing(ns, frames_from, frames, seconds=1.0):
    """What ``ns``'s eth0 receives while ``frames_from`` sends ``frames`` from its eth0."""
    sniffer = ns.popen(sys.executable, DRIVER, "sniff", "eth0", str(seconds),
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sniffer.stdout.readline().strip() == "ready"
    run_driver(frames_from, "send", "eth0", json.dumps(frames))
    sniffer.stdin.write("sent\n")
    sniffer.stdin.close()
    return json.loads(sniffer.stdout.read())


def test_spoofed_sources_reach_nobody(topo):
    topo.apply("unprotected")
    first_hop = OUT_MAC if topo.mode == "bridged" else TAP_MAC
    seen = sniffing(topo.out, topo.vm, [_udp(name, mac, src, dst, first_hop)
                                        for name, mac, src, dst in (
        ("ok4", VM_MAC, VM4, topo.out4), ("ip4", VM_MAC, OTHER4, topo.out4),
        ("mac4", OTHER_MAC, VM4, topo.out4), ("ok6", VM_MAC, VM6, topo.out6),
        ("ip6", VM_MAC, OTHER6, topo.out6), ("mac6", OTHER_MAC, VM6, topo.out6))])
    assert {"ok4", "ok6"} <= set(seen)
    assert not {"ip4", "mac4", "ip6", "mac6"} & set(seen), seen


def test_arp_claims_for_other_addresses_are_ignored(topo):
    topo.apply(None)
    topo.flush_neighbours()
    claims = [(VM_MAC, VM4), (VM_MAC, OTHER4), (OTHER_MAC, VM4)]  # (sender MAC, sender IP)
    if topo.mode == "bridged":
        # Gratuitous ARP (target == sender address) onto the segment.
        sent = [_arp("ff:ff:ff:ff:ff:ff", sha, spa, spa) for sha, spa in claims]
        gratuitous = {f"arp op=1 sha={sha} spa={spa} tpa={spa}" for sha, spa in claims}
        seen = sniffing(topo.out, topo.vm, sent)
        assert [s for s in seen if s in gratuitous] == [f"arp op=1 sha={VM_MAC} spa={VM4} tpa={VM4}"]
        return
    # ARP never leaves a routed tap: the node is the one to fool. Unicast requests for
    # the gateway, which it answers by proxy ARP, learning the sender as it does.
    replies = sniffing(topo.vm, topo.vm, [_arp(TAP_MAC, sha, spa, "203.0.113.1")
                                          for sha, spa in claims])
    assert [r for r in replies if r.startswith("arp op=2")] == [
        f"arp op=2 sha={TAP_MAC} spa=203.0.113.1 tpa={VM4}"]
    assert topo.hv.run("ip", "neigh", "show", "to", OTHER4).stdout.strip() == ""


@pytest.mark.parametrize("topo", [(b, "bridged") for b in BACKENDS], indirect=True,
                         ids=lambda p: "-".join(p))
def test_private_network_admits_only_its_mac_prefix(topo):
    topo.apply(None, mac_prefix=PRIVATE)
    ping = {"kind": "ping", "host": VM4}
    try:
        topo.flush_neighbours()
        assert probe(topo.out, ping) == ["ok"]
        topo.out.run("ip", "link", "set", "eth0", "address", "02:00:10:00:00:20")
        topo.flush_neighbours()
        assert probe(topo.out, ping) == ["timeout"]
    finally:
        topo.out.run("ip", "link", "set", "eth0", "address", OUT_MAC)
        topo.apply(None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_taps_whose_names_share_a_prefix_keep_their_own_rules(netns, backend):
    """iptables reaches a tap's rules through a tree of name prefixes (tap1 -> tap1+ ->
    tap12): each VM still gets its own anti-spoofing and profile, whoever else is there."""
    hv, out = netns("hv"), netns("out")
    netns.veth(hv, out, "outbr", "eth0")
    _sh(hv, "ip link add br0 type bridge", "ip link set outbr master br0", "ip link set br0 up",
        "ip link set outbr up")
    _sh(out, f"ip link set eth0 address {OUT_MAC}", "ip link set eth0 up",
        "ip addr add 203.0.113.20/24 dev eth0")
    vms = {}
    for tap, last, profile in (("tap1", 11, "protected"), ("tap12", 12, "unprotected"),
                               ("tap2", 13, "protected")):
        vm = netns(f"vm{last}")
        netns.veth(hv, vm, tap, "eth0")
        mac, ip = f"02:00:00:00:00:{last}", f"203.0.113.{last}"
        _sh(hv, f"ip link set {tap} master br0", f"ip link set {tap} up")
        _sh(vm, f"ip link set eth0 address {mac}", "ip link set eth0 up",
            f"ip addr add {ip}/24 dev eth0")
        _serve(vm, "tcp:80")
        vms[tap] = (vm, mac, ip, {**nic("bridged", profile, tap, mac=mac), "ipv4": [ip],
                                  "ipv6": [str(link_local(mac))]})
    firewall(hv, backend, ("setup",), *[("apply", tap, v[3]) for tap, v in vms.items()])
    try:
        reached = probe(out, *[{"kind": "tcp", "host": v[2], "port": 80} for v in vms.values()])
        assert reached == ["timeout", "ok", "timeout"]
        for tap, (vm, mac, ip, _) in vms.items():
            seen = sniffing(out, vm, [_udp(f"own-{tap}", mac, ip, "203.0.113.20", OUT_MAC),
                                      _udp(f"mac-{tap}", OTHER_MAC, ip, "203.0.113.20", OUT_MAC),
                                      _udp(f"ip-{tap}", mac, OTHER4, "203.0.113.20", OUT_MAC)])
            assert [s for s in seen if s.split("-")[-1] == tap] == [f"own-{tap}"], seen
    finally:
        firewall(hv, backend, ("teardown",))


# --- the ruleset itself, in an empty namespace (taps need not exist) ----------------------

@pytest.fixture(params=BACKENDS)
def fw(request, netns):
    ns = netns("fw")
    return lambda *ops: firewall(ns, request.param, *ops)


def test_apply_is_idempotent_and_removal_exact(fw):
    routed, bridged = nic("routed", "limited", "tap1"), nic("bridged", "protected", "tap10",
                                                           mac_prefix=PRIVATE)
    base, once, twice, both, only_tap10, after = fw(
        ("setup",), ("listing",), ("apply", "tap1", routed), ("listing",),
        ("apply", "tap1", routed), ("listing",), ("apply", "tap10", bridged), ("listing",),
        ("apply", "tap1", None), ("listing",), ("apply", "tap10", None), ("listing",))[1::2]
    assert once == twice != base and "tap1" in once and both != once
    assert "tap1\"" not in only_tap10 and "from_tap1\n" not in only_tap10 and "tap10" in only_tap10
    assert after == base


def test_new_mac_on_the_same_tap_equals_a_fresh_apply(fw):
    old, new = nic("bridged", "limited", mac="02:00:00:00:00:01"), nic("bridged", "limited")
    replaced, fresh = fw(("setup",), ("apply", "tap0", old), ("apply", "tap0", new), ("listing",),
                         ("teardown",), ("setup",), ("apply", "tap0", new), ("listing",))[3::4]
    assert replaced == fresh and "02:00:00:00:00:01" not in replaced


def test_mode_change_leaves_nothing_of_the_old_mode(fw):
    bridged, routed = nic("bridged", "limited", mac_prefix=PRIVATE), nic("routed", None)
    results = fw(("setup",), ("listing",), ("apply", "tap0", bridged), ("apply", "tap0", routed),
                 ("listing",), ("taps",), ("teardown",), ("setup",), ("apply", "tap0", routed),
                 ("listing",), ("apply", "tap0", None), ("listing",))
    base, switched, taps, fresh, removed = (results[i] for i in (1, 4, 5, 9, 11))
    assert switched == fresh and taps == ["tap0"] and removed == base
    assert "prv_tap0" not in switched and "profile_limited\n" not in switched.split("chain")[0]


def test_500_apply_remove_cycles_leave_the_baseline(fw):
    ops = []
    for i in range(500):
        mode = ("bridged", "routed")[i % 2]
        ops += [("apply", f"tap{i % 7}", nic(mode, PROFILES[i % 4], f"tap{i % 7}",
                                             mac=f"02:00:00:00:01:{i % 256:02x}")),
                ("apply", f"tap{i % 7}", None)]
    results = fw(("setup",), ("listing",), *ops, ("listing",), ("taps",))
    assert results[-2] == results[1] and results[-1] == []


def test_setup_converges_and_profile_chains_follow_the_config(fw):
    from snf_ganeti.ifscripts.default_profiles import DEFAULT_PROFILES
    changed = {**DEFAULT_PROFILES, "limited": {**DEFAULT_PROFILES["limited"], "rules": [
        *DEFAULT_PROFILES["limited"]["rules"], {"proto": "tcp", "dport": [8443]}]}}
    without_limited = {k: v for k, v in DEFAULT_PROFILES.items() if k != "limited"}
    results = fw(("setup",), ("listing",), ("setup",), ("listing",),
                 ("apply", "tap0", nic("routed", "limited")), ("setup", changed), ("listing",),
                 ("setup", without_limited), ("listing",), ("apply", "tap0", None),
                 ("setup", without_limited), ("listing",))
    first, again, changed_listing, in_use, unused = (results[i] for i in (1, 3, 6, 8, 11))
    assert first == again
    assert "8443" in changed_listing and changed_listing.count("chain profile_limited") == 2
    assert '"tap0" : jump profile_limited' in changed_listing
    assert "chain profile_limited" in in_use      # a tap still jumps to it
    assert "profile_limited" not in unused and "profile_protected" in unused


def test_dispatch_does_not_grow_with_the_number_of_nics(fw):
    ops = [("apply", f"tap{i}", nic(("bridged", "routed")[i % 2], "limited", f"tap{i}"))
           for i in range(40)]
    listing = fw(("setup",), *ops, ("listing",))[-1]
    for table in listing.split("table ")[1:]:
        for chain in table.split("  chain ")[1:]:
            if " hook " in chain.splitlines()[0]:
                assert len(chain.splitlines()) == 2, chain  # the header and one vmap rule


def test_errors_are_one_line_firewall_errors(netns):
    ns = netns("fw")
    for backend in BACKENDS:
        ops = [("apply", "tap0", None), ("apply", "tap0", nic("routed", "limited")), ("setup",),
               ("apply", "tap0", nic("routed", "nosuch")),
               ("apply", "tap0", nic("routed", None, mac="not-a-mac")),
               ("apply", "tap0", {**nic("routed", None), "mode": "openvswitch"}),
               ("apply", "bad name", None), ("teardown",), ("teardown",)]
        results = json.loads(run_driver(ns, "backend", input=json.dumps(
            {"backend": backend, "ops": ops})))
        assert [("ok" in r) for r in results] == [True, False, True, False, False, False, False,
                                                  True, True]
        errors = [r for r in results if "error" in r]
        assert all(r["type"] == "FirewallError" and "\n" not in r["error"] for r in errors)
        assert "not set up" in errors[0]["error"] and "'nosuch'" in errors[1]["error"]
        assert ns.run("nft", "list", "ruleset").stdout.strip() == ""


def test_iptables_takes_100_routed_nics_on_one_node(netns):
    """The 65th routed NIC used to fail: ``0/0,TAP`` elements of all taps shared one
    ipset bucket ("Hash is full"); taps are now told apart by their netdev group."""
    ns = netns("fw")
    batch = "".join(f"link add tap{i} type veth peer name peer{i}\n" for i in range(100))
    ns.run("ip", "-batch", "-", input=batch)
    nics = [nic("routed", PROFILES[i % 4], f"tap{i}", mac=f"02:00:00:00:02:{i:02x}")
            for i in range(100)]
    nics = [{**n, "ipv4": [f"203.0.113.{i + 1}"], "ipv6": [f"2001:db8:100::{i + 1:x}"]}
            for i, n in enumerate(nics)]
    def groups():
        return {link["ifname"]: link.get("group") for link in
                json.loads(ns.run("ip", "-j", "-d", "link", "show").stdout)}

    _, base, *_, taps, full = firewall(ns, "iptables", ("setup",), ("listing",),
                                       *[("apply", n["tap"], n) for n in nics], ("taps",),
                                       ("listing",))
    in_groups = groups()
    # the profile (one of four, or none) above the MAC-check bucket of the tap
    assert len({int(in_groups[f"tap{i}"]) & 0xFFFFFF00 for i in range(100)}) == 4
    assert all(int(in_groups[f"tap{i}"]) & 0xFF == r.mac_bucket(f"tap{i}") for i in range(100))
    assert all(in_groups[f"peer{i}"] == "default" for i in range(100))
    results = firewall(ns, "iptables", *[("apply", n["tap"], n) for n in nics], ("listing",),
                       *[("apply", n["tap"], None) for n in nics], ("taps",), ("listing",))
    again, gone, after = results[100], results[-2], results[-1]
    assert sorted(taps) == sorted(f"tap{i}" for i in range(100))
    assert full == again and all(f'"tap{i}"' in full for i in range(100))
    assert gone == [] and after == base
    assert all(groups()[f"tap{i}"] == "default" for i in range(100))


def _as_before_the_tree(text):
    """A saved ruleset with its per-tap rules back in the base chains (the older layout)."""
    node = re.compile(r"snf-(from|prv|bridged)\.\S*")
    lines = [line for line in text.splitlines() if not (
        line.startswith(":") and node.match(line[1:]) or (
            line.startswith("-A ") and node.search(line.split(" -j ")[-1])))]
    return "".join(node.sub(lambda m: f"snf-{m.group(1)}", line, count=1) + "\n"
                   for line in lines)


def test_iptables_moves_rules_of_the_layout_before_the_tree(netns):
    """NICs plumbed by a version without the prefix trees are re-applied and removed."""
    ns = netns("fw")
    old = nic("bridged", "limited", "tap0", mac_prefix=PRIVATE)
    base = firewall(ns, "iptables", ("setup",), ("listing",), ("apply", "tap1", nic(
        "bridged", "limited", "tap1")), ("apply", "tap0", old))[1]
    for save, restore in (("ebtables-save", ["ebtables-restore"]),
                          ("iptables-legacy-save", ["iptables-legacy-restore", "-T", "filter"]),
                          ("ip6tables-legacy-save", ["ip6tables-legacy-restore", "-T", "filter"])):
        ns.run(*restore, input=_as_before_the_tree(ns.run(save).stdout))
    before = firewall(ns, "iptables", ("listing",))[0]
    assert '"tap0" : jump' not in before and "-o tap0" in before and "chain from.t\n" not in before
    results = firewall(ns, "iptables", ("apply", "tap0", nic("bridged", "protected")),
                       ("listing",), ("apply", "tap0", None), ("apply", "tap1", None),
                       ("listing",), ("taps",))
    moved, gone, taps = results[1], results[4], results[5]
    chains = {c.split("\n", 1)[0]: c for c in moved.split("  chain ")[1:]}
    assert "-i tap0 -j from_tap0" in chains["from.tap"]
    assert "-i tap1 -j from_tap1" in chains["from"] and "-i t+ -j from.t" in chains["from"]
    assert not any(name.startswith("prv") for name in chains)   # tap0 left its network
    assert "--physdev-out tap0 --physdev-is-bridged -j profile_protected" in chains["bridged.tap"]
    assert "tap0" not in chains["bridged"] and "profile_limited" in chains["bridged"]
    assert gone == base and taps == []


def test_iptables_leaves_the_dhcp_steering_chain_alone(netns):
    """dhcpd's ``snf-ganeti-dhcp`` shares the legacy mangle table with ``snf-mark``."""
    ns = netns("fw")
    ns.run("iptables-legacy", "-t", "mangle", "-N", "snf-ganeti-dhcp")
    ns.run("iptables-legacy", "-t", "mangle", "-A", "PREROUTING", "-j", "snf-ganeti-dhcp")
    _, listing, _ = firewall(ns, "iptables", ("setup",), ("listing",), ("teardown",))
    assert "snf-mark" not in listing and "mark" in listing and "ganeti-dhcp" not in listing
    mangle = ns.run("iptables-legacy", "-t", "mangle", "-S").stdout
    assert "-N snf-ganeti-dhcp" in mangle and "-A PREROUTING -j snf-ganeti-dhcp" in mangle
    assert "snf-mark" not in mangle


def test_iptables_setup_gives_older_source_sets_the_routing_mark(netns):
    """Source sets made before the routing mark lack skbinfo, and rules refer to them:
    setup swaps in copies that have it, elements kept."""
    ns = netns("fw")
    ns.run("ipset", "create", "snf-src4", "hash:net,iface", "family", "inet")
    ns.run("ipset", "add", "snf-src4", "203.0.113.10,tap0")
    ns.run("iptables-legacy", "-t", "raw", "-A", "PREROUTING", "-m", "set", "--match-set",
           "snf-src4", "src,src", "-j", "ACCEPT")
    firewall(ns, "iptables", ("setup",))
    saved = ns.run("ipset", "save", "snf-src4").stdout
    assert "skbinfo" in saved.splitlines()[0] and "add snf-src4 203.0.113.10,tap0" in saved
    assert "snf-src4-new" not in ns.run("ipset", "list", "-n").stdout
    firewall(ns, "iptables", ("apply", "tap0", {**nic("routed", None), "ipv6": []}))


LIBRARY_SEARCH = """
import sys
commands = []
sys.addaudithook(lambda event, args: commands.append(" ".join(map(str, args[1][:2])))
                 if event == "subprocess.Popen" else None)
from snf_ganeti.ifscripts.iptables import IptablesBackend
IptablesBackend()._module()
import os
print(sorted(set(commands)), "XTABLES_LIBDIR" in os.environ)
"""


def test_python_iptables_is_told_where_its_libraries_are():
    """Left to itself, importing python-iptables runs ldconfig -N -v, gcc and ld (about 0.1 s
    of every NIC script on this backend); told where Debian keeps them, none of these. The
    hints are gone again afterwards: the tools the backend runs do not inherit them."""
    env = {k: v for k, v in os.environ.items() if k not in (
        "XTABLES_LIBDIR", "IPTABLES_LIBDIR", "PYTHON_IPTABLES_XTABLES_VERSION")}
    out = subprocess.run([sys.executable, "-c", LIBRARY_SEARCH], capture_output=True,
                         text=True, env=env, check=True).stdout.splitlines()[-1]
    assert "ldconfig -N" not in out and "gcc" not in out and "ld -t" not in out, out
    assert out.endswith("] False"), out
