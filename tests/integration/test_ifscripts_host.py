"""The NIC script's host edge in namespaces: routed and bridged NICs, private VXLAN networks."""

import json
import os
import socket
import subprocess
import sys

import pytest

from snf_ganeti.config import NetworkConfig
from snf_ganeti.ifscripts import announce
from snf_ganeti.ifscripts.host import port_request
from snf_ganeti.ifscripts.plan import PrivateBridge
from tests.support.ifup_driver import write_config
from tests.support.procs import ROOT

pytestmark = pytest.mark.integration
VM_MAC = "aa:6b:39:22:33:44"
EUI64 = "2001:db8:1:0:a86b:39ff:fe22:3344"


def driver(ns, action, env, network=None):
    argv = ["env", f"PYTHONPATH={ROOT}", *[f"{k}={v}" for k, v in env.items()],
            sys.executable, "-m", "tests.support.host_driver", action, json.dumps(network or {})]
    return ns.run(*argv)


def routed_env(**extra):
    return {"INTERFACE": "tap0", "MODE": "routed", "INSTANCE": "snf-1", "MAC": VM_MAC,
            "LINK": "100", "IP": "192.0.2.10", "NETWORK_SUBNET": "192.0.2.0/24",
            "NETWORK_GATEWAY": "192.0.2.1", "NETWORK_SUBNET6": "2001:db8:1::/64", **extra}


@pytest.fixture
def routed(netns):
    """hv (the node) between vm (tap0 <-> eth0) and rtr (uplink0 <-> eth0, the real gateway)."""
    hv, vm, rtr = netns("hv"), netns("vm"), netns("rtr")
    netns.veth(hv, vm, "tap0", "eth0")
    netns.veth(hv, rtr, "uplink0", "eth0")
    for command in (f"ip link set eth0 address {VM_MAC}", "ip link set eth0 up",
                    "ip addr add 192.0.2.10/24 dev eth0", "ip route add default via 192.0.2.1"):
        vm.run(*command.split())
    for command in ("ip link set eth0 up", "ip addr add 192.0.2.1/24 dev eth0",
                    "ip -6 addr add 2001:db8:1::1/64 dev eth0 nodad"):
        rtr.run(*command.split())
    for command in ("ip link set uplink0 up", "ip link set lo up",
                    "ip route add 192.0.2.0/24 dev uplink0 table 100",
                    "ip route add default via 192.0.2.1 dev uplink0 table 100",
                    "ip -6 route add 2001:db8:1::/64 dev uplink0 table 100",
                    "ip -6 route add default via 2001:db8:1::1 dev uplink0 table 100",
                    "ip rule add iif uplink0 lookup 100",
                    "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1",
                    "sysctl -qw net.ipv4.conf.uplink0.proxy_arp=1 net.ipv6.conf.uplink0.proxy_ndp=1"):
        hv.run(*command.split())
    return hv, vm, rtr


def state_of(hv):
    return {"rules": hv.run("ip", "rule").stdout + hv.run("ip", "-6", "rule").stdout,
            "routes": hv.run("ip", "route", "show", "table", "100").stdout +
            hv.run("ip", "-6", "route", "show", "table", "100").stdout,
            "proxy": hv.run("ip", "-6", "neigh", "show", "proxy").stdout}


def ping(ns, address, deadline=15):
    """One echo reply within ``deadline`` seconds: short only where none is expected."""
    return ns.run("busybox", "ping", "-c", "1", "-w", str(deadline), address,
                  check=False, timeout=deadline + 15).returncode == 0


def ifup_driver(ns, config, action, env):
    return ns.run("env", f"PYTHONPATH={ROOT}", *[f"{k}={v}" for k, v in env.items()],
                  sys.executable, "-m", "tests.support.ifup_driver", config, action, timeout=120)


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_routed_nics_share_one_policy_rule_per_link(routed, netns, tmp_path, backend):
    """Routes, proxies and traffic through the link's table; its rule lives while a NIC uses it."""
    hv, vm, rtr = routed
    vm2 = netns("vm2")
    netns.veth(hv, vm2, "tap1", "eth0")
    for command in ("ip link set eth0 address aa:6b:39:22:33:55", "ip link set eth0 up",
                    "ip addr add 192.0.2.11/24 dev eth0", "ip route add default via 192.0.2.1"):
        vm2.run(*command.split())
    config = write_config(tmp_path, backend)
    tap1 = routed_env(INTERFACE="tap1", MAC="aa:6b:39:22:33:55", IP="192.0.2.11")
    before = state_of(hv)
    assert not ping(vm, "192.0.2.1", deadline=3)
    ifup_driver(hv, config, "up", routed_env())
    state = json.loads((tmp_path / "nics" / "tap0.json").read_text())
    assert state["table"] == 100 and state["mark"] == 0x534E0064
    assert state["proxy_ndp"] == {"address": EUI64, "dev": "uplink0"}
    after = state_of(hv)
    assert after["rules"].count("fwmark 0x534e0064 lookup 100") == 2  # IPv4 and IPv6
    assert "iif tap0" not in after["rules"]
    assert "192.0.2.10 dev tap0 proto static" in after["routes"]
    assert f"{EUI64} dev tap0 proto static" in after["routes"]
    assert f"{EUI64} dev uplink0 proxy" in after["proxy"]
    assert hv.run("sysctl", "-n", "net.ipv4.conf.tap0.proxy_arp").stdout.strip() == "1"
    assert ping(vm, "192.0.2.1") and ping(rtr, "192.0.2.10")
    ifup_driver(hv, config, "up", routed_env())  # twice == once
    assert state_of(hv) == after
    ifup_driver(hv, config, "up", tap1)
    assert state_of(hv)["rules"] == after["rules"]  # one rule per link, not per NIC
    ifup_driver(hv, config, "down", {"INTERFACE": "tap0"})
    assert "fwmark 0x534e0064 lookup 100" in state_of(hv)["rules"]  # tap1 still uses it
    assert ping(vm2, "192.0.2.1") and not ping(vm, "192.0.2.1", deadline=3)
    ifup_driver(hv, config, "down", {"INTERFACE": "tap1"})
    assert state_of(hv) == before


def test_routed_nic_announces_itself_on_the_uplink(routed):
    hv, vm, rtr = routed
    capture = rtr.popen(sys.executable, "-c", CAPTURE, "eth0", stdout=subprocess.PIPE, text=True)
    capture.stdout.readline()  # bound
    driver(hv, "up", routed_env())
    seen = capture.communicate(timeout=10)[0]
    uplink_mac = hv.run("cat", "/sys/class/net/uplink0/address").stdout.strip()
    assert f"arp-request 192.0.2.10 {uplink_mac}" in seen
    assert f"arp-reply 192.0.2.10 {uplink_mac}" in seen
    assert f"na {EUI64} {uplink_mac}" in seen


def test_an_announcement_that_fails_is_logged_and_the_next_still_goes_out(caplog):
    """A device gone meanwhile (ENODEV) costs its own announcement only; the other one goes
    out on the same socket (here on loopback: no traffic leaves the host)."""
    frames = announce.garp_frames("aa:00:00:11:22:33", "192.0.2.10")
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806)) as capture:
        capture.bind(("lo", 0))
        capture.settimeout(5)
        with announce.Announcer() as announcer:
            announcer.send("snft-gone0", frames)
            announcer.send("lo", frames)
        seen = [capture.recv(2048) for _ in frames]
    assert seen == frames
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["could not announce on snft-gone0: No such device"]


CAPTURE = """
import ipaddress, socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); s.bind((sys.argv[1], 0))
s.settimeout(0.5); print('bound', flush=True); end = time.time() + 5
while time.time() < end:
    try: f = s.recv(2048)
    except socket.timeout: continue
    kind = f[12:14]
    if kind == b'\\x08\\x06':
        op = {1: 'arp-request', 2: 'arp-reply'}[f[21]]
        print(op, socket.inet_ntoa(f[28:32]), f[22:28].hex(':'))
    elif kind == b'\\x86\\xdd' and f[20] == 58 and f[54] == 136:
        opt = f[78:86]
        print('na', ipaddress.IPv6Address(f[62:78]), opt[2:8].hex(':'))
    elif kind == b'\\x86\\xdd' and f[20] == 58 and f[54] == 128:
        print('echo-request from', ipaddress.IPv6Address(f[22:38]), flush=True)
"""


def test_bridged_nic_takes_the_bridge_mtu(netns):
    hv, vm = netns("hv"), netns("vm")
    netns.veth(hv, vm, "tap1", "eth0")
    hv.run("ip", "link", "add", "br0", "type", "bridge")
    hv.run("ip", "link", "set", "br0", "mtu", "1400")
    env = {"INTERFACE": "tap1", "MODE": "bridged", "INSTANCE": "snf-1", "MAC": VM_MAC,
           "LINK": "br0"}
    driver(hv, "up", env)
    link = hv.run("ip", "-o", "link", "show", "tap1").stdout
    assert "master br0" in link and "mtu 1400" in link and "state" in link
    result = hv.run(*_driver_argv("up", {**env, "LINK": "nobr"}), check=False)
    assert result.returncode != 0 and "bridge 'nobr' does not exist" in result.stderr


def _driver_argv(action, env):
    return ["env", f"PYTHONPATH={ROOT}", *[f"{k}={v}" for k, v in env.items()],
            sys.executable, "-m", "tests.support.host_driver", action, "{}"]


def test_vxlan_private_networks_span_nodes_and_stay_apart(netns):
    """Two nodes joined by an underlay; VMs on prv7 talk across nodes, prv8's VM cannot."""
    node1, node2 = netns("n1"), netns("n2")
    netns.veth(node1, node2, "under0", "under0")
    for i, node in ((1, node1), (2, node2)):
        node.run("ip", "addr", "add", f"203.0.113.{i}/24", "dev", "under0")
        node.run("ip", "link", "set", "under0", "up")
    network = {"private_uplink": "under0"}
    vms = {}
    for label, node, tap, bridge, address in (("a", node1, "tap0", "prv7", "10.7.0.1"),
                                              ("b", node2, "tap0", "prv7", "10.7.0.2"),
                                              ("c", node2, "tap1", "prv8", "10.7.0.3")):
        vm = netns(f"vm{label}")
        netns.veth(node, vm, tap, "eth0")
        vm.run("ip", "addr", "add", f"{address}/24", "dev", "eth0")
        vm.run("ip", "link", "set", "eth0", "up")
        driver(node, "up", {"INTERFACE": tap, "MODE": "bridged", "INSTANCE": f"snf-{label}",
                            "MAC": f"aa:00:00:00:00:0{ord(label) - 96}", "LINK": bridge}, network)
        vms[label] = vm
    assert "vxlan id 7" in node1.run("ip", "-d", "link", "show", "vxlan7").stdout
    assert ping(vms["a"], "10.7.0.2") and ping(vms["b"], "10.7.0.1")
    assert not ping(vms["a"], "10.7.0.3", deadline=3) and \
        not ping(vms["c"], "10.7.0.1", deadline=3)


def test_vlan_private_bridge_request(netns):
    private = PrivateBridge("prv5", "vlan", 2995)
    assert port_request(private, "eth1", 4, NetworkConfig()) == {
        "ifname": "eth1.2995", "kind": "vlan", "link": 4, "vlan_id": 2995}
    if not os.path.exists("/proc/net/vlan") and \
            not os.path.exists("/lib/modules/%s/kernel/net/8021q" % os.uname().release):
        hv, peer = netns("hv"), netns("peer")
        netns.veth(hv, peer, "up0", "up0")
        probe = hv.run("ip", "link", "add", "link", "up0", "name", "up0.5", "type", "vlan",
                       "id", "5", check=False)
        if probe.returncode != 0:
            pytest.skip(f"this kernel has no 802.1Q VLAN support ({probe.stderr.strip()})")


def test_ifup_over_a_state_of_the_per_nic_rule_version_removes_its_rules(routed, tmp_path):
    """A node upgraded with running VMs: their state files have no mark nor routes, and
    each NIC has its own ``iif`` rules; the next ifup of the tap leaves only the link's rule."""
    hv, vm, rtr = routed
    config = write_config(tmp_path)
    before = state_of(hv)
    for family in ("-4", "-6"):
        hv.run("ip", family, "rule", "add", "iif", "tap0", "lookup", "100")
    assert "iif tap0" in state_of(hv)["rules"]
    hv.run("ip", "link", "set", "tap0", "up")
    hv.run("ip", "route", "add", "192.0.2.10/32", "dev", "tap0", "table", "100", "proto", "static")
    (tmp_path / "nics").mkdir()
    (tmp_path / "nics" / "tap0.json").write_text(json.dumps(
        {"tap": "tap0", "mode": "routed", "table": 100, "instance": "snf-1", "mac": VM_MAC}))
    ifup_driver(hv, config, "up", routed_env())
    rules = state_of(hv)["rules"]
    assert "iif tap0" not in rules and rules.count("fwmark 0x534e0064 lookup 100") == 2
    assert ping(vm, "192.0.2.1")
    ifup_driver(hv, config, "down", {"INTERFACE": "tap0"})
    assert state_of(hv) == before


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_a_routed_nic_without_ipv6_sends_no_ipv6(routed, tmp_path, backend):
    """An IPv4-only network's VM that makes up an IPv6 address: nothing of it is routed out
    (it was, with any source, through the link's table); its IPv4 still is."""
    hv, vm, rtr = routed
    config = write_config(tmp_path, backend)
    env = {k: v for k, v in routed_env().items() if k != "NETWORK_SUBNET6"}
    ifup_driver(hv, config, "up", env)
    vm.run("ip", "-6", "addr", "add", "2001:db8:1::99/64", "dev", "eth0", "nodad")
    vm.run("ip", "-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "eth0")
    tap_mac = hv.run("cat", "/sys/class/net/tap0/address").stdout.strip()
    vm.run("ip", "-6", "neigh", "replace", "2001:db8:1::1", "lladdr", tap_mac, "dev", "eth0")
    capture = rtr.popen(sys.executable, "-c", CAPTURE, "eth0", stdout=subprocess.PIPE, text=True)
    capture.stdout.readline()  # bound
    vm.run("busybox", "ping", "-6", "-c", "3", "-w", "2", "2001:db8:1::1", check=False)
    seen = capture.communicate(timeout=10)[0]
    assert "echo-request" not in seen
    assert ping(vm, "192.0.2.1")
    ifup_driver(hv, config, "down", {"INTERFACE": "tap0"})
