"""Run firewall backends and test traffic inside a network namespace.

Started as ``ip netns exec NS python firewall_driver.py COMMAND ...``:

- ``backend``: stdin is ``{"backend": name, "ops": [[op, *args], ...]}`` with ops
  ``setup [profiles]`` (config data; default: DEFAULT_PROFILES), ``apply tap nic``
  (a NicFilter as a dict, or null), ``listing``, ``taps``, ``teardown``; stdout
  is one ``{"ok": result}`` or ``{"error": message, "type": class}`` per op;
- ``serve tcp:22 udp:53 ...``: dual-stack servers (TCP answers "ok", UDP echoes);
  prints "ready";
- ``probe JSON``: runs the probes in parallel, prints their outcomes
  ("ok", "refused" or "timeout") as a JSON list;
- ``send IFNAME JSON``: sends raw frames built from the specs;
- ``sniff IFNAME SECONDS``: prints "ready", then after SECONDS a JSON list
  of what arrived (markers of our UDP datagrams, ARP summaries).
"""

import importlib
import json
import os
import select
import socket
import struct
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

BACKENDS = {"nftables": ("snf_ganeti.ifscripts.nft", "NftBackend"),
            "iptables": ("snf_ganeti.ifscripts.iptables", "IptablesBackend")}
MARKER = b"snft-"
ETH_P_ALL, ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0003, 0x0800, 0x0806, 0x86DD
PACKET_OUTGOING = 4


# --- backend ------------------------------------------------------------------------------

def run_backend(request):
    from snf_ganeti.errors import SnfGanetiError
    from snf_ganeti.ifscripts.default_profiles import DEFAULT_PROFILES
    from snf_ganeti.ifscripts.firewall import NicFilter, parse_profiles

    module, cls = BACKENDS[request["backend"]]
    backend = getattr(importlib.import_module(module), cls)()
    ops = {
        "setup": lambda profiles=None: backend.setup(parse_profiles(profiles or DEFAULT_PROFILES)),
        "apply": lambda tap, nic: backend.apply(tap, None if nic is None else NicFilter(**{
            k: tuple(v) if isinstance(v, list) else v for k, v in nic.items()})),
        "listing": backend.listing,
        "taps": lambda: sorted(backend.taps()),
        "teardown": backend.teardown,
    }
    results = []
    for name, *args in request["ops"]:
        try:
            results.append({"ok": ops[name](*args)})
        except SnfGanetiError as err:
            results.append({"error": str(err), "type": type(err).__name__})
    return results


# --- traffic ------------------------------------------------------------------------------

def serve(specs):
    sockets = []
    for spec in specs:
        proto, port = spec.split(":")
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET6, kind)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", int(port)))
        if kind == socket.SOCK_STREAM:
            sock.listen(64)
        sockets.append(sock)
    print("ready", flush=True)
    while True:
        for sock in select.select(sockets, [], [])[0]:
            if sock.type == socket.SOCK_STREAM:
                conn, _ = sock.accept()
                conn.sendall(b"ok")
                conn.close()
            else:
                data, peer = sock.recvfrom(2048)
                sock.sendto(data, peer)


def probe(spec, timeout):
    family = socket.AF_INET6 if ":" in spec["host"] else socket.AF_INET
    address = (spec["host"], spec.get("port", 0))
    try:
        if spec["kind"] == "tcp":
            with socket.create_connection(address, timeout=timeout) as sock:
                return "ok" if sock.recv(2) == b"ok" else "bad answer"
        if spec["kind"] == "udp":
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(timeout)
                sock.sendto(MARKER + b"udp", address)
                return "ok" if sock.recv(100) == MARKER + b"udp" else "bad answer"
        return _ping(family, spec["host"], timeout)
    except ConnectionRefusedError:
        return "refused"
    except (TimeoutError, socket.timeout):
        return "timeout"


def _ping(family, host, timeout):
    """ICMP or ICMPv6 echo on a raw socket (the kernel sums ICMPv6 itself)."""
    v6 = family == socket.AF_INET6
    ident = (os.getpid() ^ threading.get_ident()) & 0xFFFF
    kind, reply = (128, 129) if v6 else (8, 0)
    body = struct.pack("!HH", ident, 1) + MARKER
    header = struct.pack("!BBH", kind, 0, 0 if v6 else _checksum(bytes([kind, 0, 0, 0]) + body))
    with socket.socket(family, socket.SOCK_RAW,
                       socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP) as sock:
        sock.sendto(header + body, (host, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            data = sock.recv(2048)
            icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
            if icmp[0] == reply and icmp[4:6] == struct.pack("!H", ident):
                return "ok"
    return "timeout"


def _checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


# --- raw frames ---------------------------------------------------------------------------

def frame(spec):
    """An Ethernet frame: a UDP datagram carrying a marker, or an ARP packet."""
    eth = _mac(spec["dst_mac"]) + _mac(spec["src_mac"])
    if spec["kind"] == "arp":
        arp = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, spec.get("op", 1))
        arp += (_mac(spec["sha"]) + socket.inet_aton(spec["spa"])
                + _mac(spec.get("tha", "00:00:00:00:00:00")) + socket.inet_aton(spec["tpa"]))
        return eth + struct.pack("!H", ETH_P_ARP) + arp
    data = MARKER + spec["marker"].encode()
    if ":" not in spec["src_ip"]:
        src, dst = socket.inet_aton(spec["src_ip"]), socket.inet_aton(spec["dst_ip"])
        udp = struct.pack("!HHHH", 40000, 9, 8 + len(data), 0) + data
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        return eth + struct.pack("!H", ETH_P_IP) + ip + udp
    src = socket.inet_pton(socket.AF_INET6, spec["src_ip"])
    dst = socket.inet_pton(socket.AF_INET6, spec["dst_ip"])
    length = 8 + len(data)
    pseudo = src + dst + struct.pack("!IxxxB", length, 17)
    udp = struct.pack("!HHHH", 40000, 9, length, 0) + data
    udp = udp[:6] + struct.pack("!H", _checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    ip = struct.pack("!IHBB", 6 << 28, length, 17, 64) + src + dst
    return eth + struct.pack("!H", ETH_P_IPV6) + ip + udp


def _mac(text):
    return bytes.fromhex(text.replace(":", ""))


def send(ifname, specs):
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((ifname, 0))
        for spec in specs:
            sock.send(frame(spec))


def sniff(ifname, seconds):
    """What arrives on ``ifname`` until ``seconds`` after stdin says the frames were sent
    (or closes): the window does not depend on how soon the sender got to run."""
    seen = []
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((ifname, 0))
        print("ready", flush=True)
        deadline, watched = time.monotonic() + 120, [sock, sys.stdin]
        while (left := deadline - time.monotonic()) > 0:
            readable = select.select(watched, [], [], left)[0]
            if not readable:
                break
            if sys.stdin in readable:
                sys.stdin.readline()
                watched, deadline = [sock], time.monotonic() + seconds
                continue
            data, address = sock.recvfrom(4096)
            if address[2] != PACKET_OUTGOING and (summary := _summary(data)):
                seen.append(summary)
    return seen


def _summary(data):
    kind = struct.unpack("!H", data[12:14])[0]
    if kind == ETH_P_ARP:
        op = struct.unpack("!H", data[20:22])[0]
        sha, spa, tpa = (data[22:28].hex(":"), socket.inet_ntoa(data[28:32]),
                         socket.inet_ntoa(data[38:42]))
        return f"arp op={op} sha={sha} spa={spa} tpa={tpa}"
    if MARKER in data:
        return data[data.index(MARKER) + len(MARKER):].decode(errors="replace")
    return None


def main(argv):
    command, *args = argv
    if command == "backend":
        print(json.dumps(run_backend(json.load(sys.stdin))))
    elif command == "serve":
        serve(args)
    elif command == "probe":
        specs = json.loads(args[0])
        timeout = float(args[1]) if len(args) > 1 else 0.5
        results = [None] * len(specs)

        def one(i):
            results[i] = probe(specs[i], timeout)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(specs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(json.dumps(results))
    elif command == "send":
        send(args[0], json.loads(args[1]))
    elif command == "sniff":
        print(json.dumps(sniff(args[0], float(args[1]))))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
