"""The netns fixture: namespaces talk over veth, and teardown leaves nothing behind.

Run with ``-p tests.fixtures.netns`` until conftest.py lists the plugin.
Addresses are TEST-NET-3 and exist only inside the namespaces created here:
this machine's own uplink is on 192.0.2.0/24 and the Ganeti cluster on
198.51.100.0/24, so neither is reused even in isolation.
"""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.fixtures import netns as netns_mod
from tests.support.procs import wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# ICMP echo with a raw socket, so the test needs no ping binary.
PING = textwrap.dedent(r"""
    import os, socket, struct, sys, time
    dst = sys.argv[1]
    def checksum(b):
        b += b"\0" * (len(b) % 2)
        s = sum(struct.unpack(f"!{len(b) // 2}H", b))
        s = (s >> 16) + (s & 0xFFFF)
        return ~(s + (s >> 16)) & 0xFFFF
    ident, payload = os.getpid() & 0xFFFF, b"snft-ping"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    packet = struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, 1) + payload
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.settimeout(5)
    sock.sendto(packet, (dst, 0))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        data, (src, _) = sock.recvfrom(2048)
        icmp = data[(data[0] & 0x0F) * 4:]
        if icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident and src == dst:
            print("echo reply from", src)
            sys.exit(0)
    sys.exit(1)
""")

ECHO_SERVER = textwrap.dedent("""
    import socket, sys
    srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
    print("ready", flush=True)
    conn, _ = srv.accept()
    conn.sendall(conn.recv(100).upper())
""")

ECHO_CLIENT = textwrap.dedent("""
    import socket, sys
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as c:
        c.sendall(b"hello")
        print(c.recv(100).decode())
""")


def _configure(ns, ifname, cidr):
    ns.run("ip", "addr", "add", cidr, "dev", ifname)
    ns.run("ip", "link", "set", ifname, "up")


def _gone(pid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _host_addresses():
    return subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout


def test_two_namespaces_ping_over_veth(netns):
    a, b = netns("a"), netns("b")
    assert a.name.startswith("snft-a-") and b.name.startswith("snft-b-")
    assert {a.name, b.name} <= netns_mod.list_namespaces()
    end_a, end_b = netns.veth(a, b, "veth-a", "veth-b")
    assert (end_a.netns, end_b.netns) == (a.name, b.name)
    _configure(a, "veth-a", "203.0.113.1/24")
    _configure(b, "veth-b", "203.0.113.2/24")

    assert "echo reply from 203.0.113.2" in a.run(sys.executable, "-c", PING, "203.0.113.2").stdout
    assert "echo reply from 203.0.113.1" in b.run(sys.executable, "-c", PING, "203.0.113.1").stdout
    # The addresses exist only inside the namespaces.
    assert "203.0.113." not in _host_addresses()


def test_popen_serves_inside_namespace(netns):
    a, b = netns("cli"), netns("srv")
    netns.veth(a, b, "eth0", "eth0")
    _configure(a, "eth0", "203.0.113.1/24")
    _configure(b, "eth0", "203.0.113.2/24")
    server = b.popen(sys.executable, "-c", ECHO_SERVER, "203.0.113.2", "7007",
                     stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "ready"
    assert a.run(sys.executable, "-c", ECHO_CLIENT, "203.0.113.2", "7007").stdout.strip() == "HELLO"


def test_tap_and_bridge_fixtures(netns, veth, tap, bridge):
    vm = netns("vm")
    br = bridge("br0", vm)
    tp = tap("tap0", vm)
    host_end, _ = veth(None, vm, netns.ifname("sv"), "eth0")
    vm.run("ip", "link", "set", "tap0", "master", "br0")
    vm.run("ip", "link", "set", "eth0", "master", "br0")
    shown = vm.run("ip", "-o", "link", "show", "master", "br0").stdout
    assert "tap0" in shown and "eth0" in shown
    assert (br.netns, tp.netns) == (vm.name, vm.name)
    assert len(host_end.name) <= netns_mod.IFNAMSIZ
    assert netns_mod.link_exists(host_end.name)


def test_interface_names_are_checked(netns):
    with pytest.raises(ValueError, match="bad interface name"):
        netns.tap("a-name-of-16char")
    with pytest.raises(ValueError):
        netns.bridge("has space")
    assert len(netns.ifname("averyveryverylongstem")) == netns_mod.IFNAMSIZ


def test_cleanup_removes_everything():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    factory = netns_mod.NetnsFactory()
    try:
        ns = factory("clean")
        host_veth, host_tap, host_br = factory.ifname("sv"), factory.ifname("st"), factory.ifname("sb")
        factory.veth(None, ns, host_veth, "eth0")
        factory.tap(host_tap)
        factory.bridge(host_br)
        factory.tap("tap0", ns)
        leader = ns.popen("sh", "-c", "sleep 300 & sleep 300")
        # setsid escapes the process group; only the namespace sweep finds it.
        ns.run("sh", "-c", "setsid -f sleep 300 >/dev/null 2>&1 </dev/null")
        # the leader's shell starts its sleeps
        wait_until(lambda: len(netns_mod.namespace_pids(ns.name)) >= 3, 20, interval=0.05)
        pids = netns_mod.namespace_pids(ns.name)
        assert leader.pid in pids and len(pids) >= 3
    finally:
        problems = factory.cleanup()
    assert problems == []
    assert ns.name not in netns_mod.list_namespaces()
    for name in (host_veth, host_tap, host_br):
        assert not netns_mod.link_exists(name), name
    assert all(_gone(pid) for pid in pids)
    assert factory.cleanup() == []  # idempotent


def test_teardown_runs_when_the_test_fails(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    record = tmp_path / "created.json"
    inner = tmp_path / "test_inner.py"
    inner.write_text(textwrap.dedent("""
        import json, os

        def test_fails_after_creating_things(netns):
            ns = netns("inner")
            host = netns.ifname("sv")
            netns.veth(None, ns, host, "eth0")
            br = netns.bridge(netns.ifname("sb"))
            proc = ns.popen("sleep", "300")
            with open(os.environ["SNFT_RECORD"], "w") as f:
                json.dump({"ns": ns.name, "links": [host, br.name], "pid": proc.pid}, f)
            assert False, "deliberate failure"
    """))
    env = dict(os.environ, SNFT_RECORD=str(record), PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.fixtures.netns",
         "--rootdir", str(tmp_path), "-c", os.devnull, "-q", str(inner)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "deliberate failure" in result.stdout
    assert "teardown left things behind" not in result.stdout
    created = json.loads(record.read_text())
    assert created["ns"] not in netns_mod.list_namespaces()
    for name in created["links"]:
        assert not netns_mod.link_exists(name), name
    assert _gone(created["pid"])


def test_session_sweep_spares_live_owners():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = f"snft-sweep-{dead.pid}-0a0a0a"
    # pid 1 is alive and is not us: a concurrent run's namespace.
    foreign = "snft-sweep-1-0b0b0b"
    subprocess.run(["ip", "netns", "add", orphan], check=True)
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        deleted = netns_mod.sweep_leftovers()
        assert orphan in deleted and foreign not in deleted
        remaining = netns_mod.list_namespaces()
        assert orphan not in remaining and foreign in remaining
    finally:
        for name in (orphan, foreign):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
