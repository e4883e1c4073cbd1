"""Requests to feed ``snf_ganeti.dhcp.handler`` and parsers for the frames it answers with.

Requests are built here independently of ``snf_ganeti.frames`` (dpkt for IPv4, struct for
IPv6), so a mistake in the code under test is not mirrored by the test's own input.  Parsers
check every checksum they meet; a reply that parses is a reply whose checksums are right.
"""

import ipaddress
import json
import struct
from dataclasses import dataclass

import dpkt

from snf_ganeti import config as config_mod
from snf_ganeti.dhcp import handler
from snf_ganeti.dhcp.answer import Link
from snf_ganeti.dhcp.binding import parse_binding

TAP = "tap0"
IFINDEX = 7
VM_MAC = "02:00:00:00:00:10"
OTHER_MAC = "02:00:00:00:00:99"
LINK_MAC = "02:00:00:00:00:01"
BRIDGE = "br0"
BRIDGE_MAC = "02:00:00:00:00:b0"
LINK = Link(TAP, IFINDEX, LINK_MAC)
BRIDGE_LINK = Link(BRIDGE, 3, BRIDGE_MAC)
DUID = b"\x00\x04" + bytes(range(16))
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"

VM_IP = "192.0.2.10"
VM_LL = "fe80::ff:fe00:10"              # EUI-64 link-local of VM_MAC
VM_GLOBAL = "2001:db8:1::ff:fe00:10"    # its SLAAC address in SUBNET6
ROUTER_LL = "fe80::ff:fe00:1"           # EUI-64 link-local of LINK_MAC
BRIDGE_LL = "fe80::ff:fe00:b0"
DEFAULT_KEYS = {"MAC": VM_MAC, "HOSTNAME": "vm1.example.org", "IP": VM_IP,
                "SUBNET": "192.0.2.0/24", "GATEWAY": "192.0.2.1", "SUBNET6": "2001:db8:1::/64"}


def binding(tap=TAP, **keys):
    """A Binding parsed from a file with DEFAULT_KEYS updated by ``keys`` (None drops one)."""
    values = {**DEFAULT_KEYS, **keys}
    text = "".join(f"{key}={value}\n" for key, value in values.items() if value is not None)
    return parse_binding(tap, text)


def dhcp_config(**settings):
    """A DhcpConfig as the config file would give it (``settings`` as YAML flow mapping)."""
    return config_mod.parse("dhcp: " + json.dumps(settings)).dhcp


CONFIG = dhcp_config(nameservers=["192.0.2.53", "192.0.2.54"],
                     nameservers6=["2001:db8::53", "2001:db8::54"])


def handle(payload, bound=None, config=CONFIG, hw=VM_MAC, ifindex=IFINDEX, duid=DUID):
    """The handler's Decision for ``payload`` on the tap of ``bound`` (default: binding())."""
    if bound is None:
        bound = binding()
    link = LINK if bound.indev == bound.tap else BRIDGE_LINK

    def lookup(index):
        return (bound, link) if index == IFINDEX else None

    return handler.handle(handler.QueuedPacket(payload, ifindex, hw), lookup, config, duid)


def answer_of(payload, **kw):
    decision = handle(payload, **kw)
    assert decision.verdict == "drop"
    return decision.answer


def only_frame(answer):
    assert len(answer.frames) == 1, answer
    assert answer.frames[0].tap == TAP
    return answer.frames[0].data


# --- DHCPv4 -------------------------------------------------------------------------------

def ip4(text):
    return int(ipaddress.IPv4Address(text))


def dhcp4_request(msg_type, mac=VM_MAC, xid=0x1234ABCD, flags=0, ciaddr="0.0.0.0",
                  options=(), src="0.0.0.0", dst="255.255.255.255", hln=6):
    """The IPv4 packet (as NFQUEUE gives it) carrying a BOOTREQUEST of ``msg_type``."""
    opts = [(dpkt.dhcp.DHCP_OPT_MSGTYPE, bytes([msg_type])), *options] \
        if msg_type is not None else list(options)
    request = dpkt.dhcp.DHCP(op=dpkt.dhcp.DHCP_OP_REQUEST, xid=xid, flags=flags, hln=hln,
                             ciaddr=ip4(ciaddr), chaddr=bytes.fromhex(mac.replace(":", "")),
                             opts=opts)
    udp = dpkt.udp.UDP(sport=68, dport=67, data=bytes(request))
    udp.ulen = len(udp)
    packet = dpkt.ip.IP(src=ipaddress.IPv4Address(src).packed,
                        dst=ipaddress.IPv4Address(dst).packed, p=dpkt.ip.IP_PROTO_UDP, data=udp)
    return bytes(packet)


@dataclass
class Dhcp4Reply:
    eth: dpkt.ethernet.Ethernet
    ip: dpkt.ip.IP
    udp: dpkt.udp.UDP
    dhcp: dpkt.dhcp.DHCP

    @property
    def options(self):
        """{code: value}; a code sent twice fails (we send each option once)."""
        codes = [code for code, _ in self.dhcp.opts]
        assert len(codes) == len(set(codes)), codes
        return dict(self.dhcp.opts)

    @property
    def eth_dst(self):
        return mac(self.eth.dst)

    @property
    def eth_src(self):
        return mac(self.eth.src)

    @property
    def ip_dst(self):
        return str(ipaddress.IPv4Address(self.ip.dst))

    @property
    def ip_src(self):
        return str(ipaddress.IPv4Address(self.ip.src))


def mac(raw):
    return ":".join(f"{b:02x}" for b in raw)


def parse_dhcp4(frame):
    """The layers of a DHCPv4 reply frame, after checking the IP and UDP checksums."""
    eth = dpkt.ethernet.Ethernet(frame)
    assert eth.type == dpkt.ethernet.ETH_TYPE_IP
    ip = eth.data
    assert isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.udp.UDP)
    raw_ip = frame[14:]
    header = raw_ip[:ip.hl * 4]
    assert dpkt.in_cksum(header) == 0, "IPv4 header checksum"
    assert ip.len == len(raw_ip)
    udp_raw = raw_ip[ip.hl * 4:]
    assert udp_raw[6:8] != b"\0\0", "UDP checksum missing"
    pseudo = raw_ip[12:20] + struct.pack("!BBH", 0, 17, len(udp_raw))
    assert dpkt.in_cksum(pseudo + udp_raw) == 0, "UDP checksum"
    udp = ip.data
    assert udp.ulen == len(udp_raw)
    return Dhcp4Reply(eth, ip, udp, dpkt.dhcp.DHCP(udp.data))


def dhcp4_reply(payload, **kw):
    """(Answer, parsed reply) for a request that must be answered with exactly one frame."""
    answer = answer_of(payload, **kw)
    return answer, parse_dhcp4(only_frame(answer))


# --- IPv6 ---------------------------------------------------------------------------------

def ip6_packet(src, dst, next_header, payload, hlim=255):
    return struct.pack("!IHBB", 0x60000000, len(payload), next_header, hlim) + \
        ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + payload


def icmp6_packet(src, dst, icmp_type, body, hlim=255, code=0):
    """An ICMPv6 packet; its checksum is left 0 (the handler does not check it)."""
    return ip6_packet(src, dst, 58, struct.pack("!BBH", icmp_type, code, 0) + body, hlim)


def rs(src=VM_LL, hlim=255, slla=VM_MAC):
    body = b"\0" * 4 + (bytes([1, 1]) + bytes.fromhex(slla.replace(":", "")) if slla else b"")
    return icmp6_packet(src, "ff02::2", 133, body, hlim)


def ns(target, src=VM_LL, hlim=255, slla=VM_MAC, options=None):
    if options is None:
        options = bytes([1, 1]) + bytes.fromhex(slla.replace(":", "")) if slla else b""
    dst = "ff02::1:ff" + ipaddress.IPv6Address(target).exploded[-7:]
    return icmp6_packet(src, dst, 135, b"\0" * 4 + ipaddress.IPv6Address(target).packed +
                        options, hlim)


def dhcpv6_option(code, value):
    return struct.pack("!HH", code, len(value)) + value


CLIENT_ID = b"\x00\x03\x00\x01" + bytes.fromhex(VM_MAC.replace(":", ""))


def dhcpv6_request(msg_type=11, xid=b"\xab\xcd\xef", options=None, src=VM_LL):
    """A UDP 546 -> 547 DHCPv6 message (default: Information-Request with a client id)."""
    if options is None:
        options = dhcpv6_option(1, CLIENT_ID) + dhcpv6_option(6, struct.pack("!HH", 23, 24))
    message = bytes([msg_type]) + xid + options
    udp = struct.pack("!HHHH", 546, 547, 8 + len(message), 0) + message
    return ip6_packet(src, "ff02::1:2", 17, udp, hlim=1)


@dataclass
class Ip6Reply:
    eth_dst: str
    eth_src: str
    src: ipaddress.IPv6Address
    dst: ipaddress.IPv6Address
    hlim: int
    next_header: int
    payload: bytes      # the upper-layer packet, its checksum verified


def parse_ip6(frame):
    """An IPv6 reply frame's fields, after checking its length and upper-layer checksum."""
    assert struct.unpack("!H", frame[12:14])[0] == 0x86DD
    version_etc, length, next_header, hlim = struct.unpack("!IHBB", frame[14:22])
    assert version_etc >> 28 == 6
    src, dst = frame[22:38], frame[38:54]
    payload = frame[54:]
    assert length == len(payload)
    pseudo = src + dst + struct.pack("!I3xB", len(payload), next_header)
    assert dpkt.in_cksum(pseudo + payload) == 0, "upper-layer checksum"
    return Ip6Reply(mac(frame[0:6]), mac(frame[6:12]), ipaddress.IPv6Address(src),
                    ipaddress.IPv6Address(dst), hlim, next_header, payload)


def icmp6_reply(frame, icmp_type):
    """(Ip6Reply, message body after the 4-byte ICMPv6 header) of a ``icmp_type`` frame."""
    reply = parse_ip6(frame)
    assert reply.next_header == 58
    assert reply.payload[0] == icmp_type and reply.payload[1] == 0
    return reply, reply.payload[4:]


def nd_options(data):
    """[(type, bytes after type and length)] of neighbour-discovery options."""
    options = []
    while data:
        kind, units = data[0], data[1]
        assert units > 0 and len(data) >= units * 8, data
        options.append((kind, data[2:units * 8]))
        data = data[units * 8:]
    return options


def dhcpv6_options(data):
    """[(code, value)] of a DHCPv6 option block (in order)."""
    options = []
    while data:
        code, length = struct.unpack("!HH", data[:4])
        assert len(data) >= 4 + length
        options.append((code, data[4:4 + length]))
        data = data[4 + length:]
    return options


# --- fuzzing ------------------------------------------------------------------------------

def seed_packets():
    """One valid packet of every kind the handler answers, and a few it refuses."""
    return [
        dhcp4_request(1),
        dhcp4_request(3, options=[(50, ipaddress.IPv4Address(VM_IP).packed)]),
        dhcp4_request(3, ciaddr=VM_IP, src=VM_IP, dst="192.0.2.1"),
        dhcp4_request(8, ciaddr=VM_IP, src=VM_IP, dst="192.0.2.1", flags=0x8000),
        rs(),
        ns("2001:db8:1::1"),
        ns(ROUTER_LL, src=VM_GLOBAL),
        dhcpv6_request(),
        dhcpv6_request(msg_type=1),
    ]


def apply_edits(data, edits):
    """``data`` after ``edits``: (op, position, chunk) with op 0 flip (xor chunk[0]), 1
    truncate, 2 insert chunk, 3 delete len(chunk) bytes; positions wrap around the length."""
    data = bytearray(data)
    for op, position, chunk in edits:
        where = position % (len(data) + 1)
        if op == 0 and data:
            data[where % len(data)] ^= chunk[0] or 0x80
        elif op == 1:
            del data[where:]
        elif op == 2:
            data[where:where] = chunk
        elif op == 3:
            del data[where:where + len(chunk)]
    return bytes(data)


def random_edits(rnd):
    return [(rnd.randrange(4), rnd.randrange(400), rnd.randbytes(rnd.randint(1, 8)))
            for _ in range(rnd.randint(1, 4))]


def random_options_packet(rnd):
    """A DHCPv4, ND or DHCPv6 query of a random type carrying a random list of options."""
    kind = rnd.randrange(3)
    if kind == 0:
        options = [(rnd.randint(1, 254), rnd.randbytes(rnd.choice((0, 1, 4, 5, 16))))
                   for _ in range(rnd.randint(0, 8))]
        return dhcp4_request(rnd.choice((None, 1, 3, 4, 7, 8, 0, 255)), options=options,
                             ciaddr=rnd.choice(("0.0.0.0", VM_IP)), flags=rnd.choice((0, 0x8000)),
                             hln=rnd.choice((6, 6, 0, 16, 255)))
    if kind == 1:
        options = b"".join(bytes([rnd.randint(0, 40), units]) + rnd.randbytes(max(units * 8 - 2, 0))
                           for units in (rnd.randint(0, 3) for _ in range(rnd.randint(0, 4))))
        if rnd.random() < 0.5:
            return ns(rnd.choice(("2001:db8:1::1", ROUTER_LL, VM_GLOBAL, "::")), options=options,
                      src=rnd.choice((VM_LL, "::", VM_GLOBAL)))
        return icmp6_packet(VM_LL, "ff02::2", 133, b"\0" * 4 + options)
    options = b"".join(dhcpv6_option(rnd.choice((1, 2, 6, 23, 24, rnd.randrange(65536))),
                                     rnd.randbytes(rnd.randint(0, 20)))
                       for _ in range(rnd.randint(0, 5)))
    return dhcpv6_request(msg_type=rnd.choice((11, 11, 1, 7, 0, 255)), options=options)
