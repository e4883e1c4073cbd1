"""Addresses and Ethernet frames that ifup's announcements and the DHCP server both build.

Raw frames rather than the kernel's stack because they go out on a tap from an address the
host does not own (the VM's router address, or the VM's own on its behalf).
"""

import ipaddress
import struct

# By hand rather than with dpkt: importing dpkt alone costs every ifup 40 ms.
ETH_TYPE_IP, ETH_TYPE_ARP, ETH_TYPE_IP6, IP_PROTO_UDP = 0x0800, 0x0806, 0x86DD, 17
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ALL_NODES = ipaddress.IPv6Address("ff02::1")
LINK_LOCAL = ipaddress.IPv6Network("fe80::/64")


def mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", ""))


def mac_text(raw):
    return bytes(raw[:6]).hex(":")


def eui64(mac, network):
    """The SLAAC address of ``mac`` in a /64 (RFC 4291 appendix A), else None."""
    if network is None or network.prefixlen != 64:
        return None
    octets = mac_bytes(mac)
    interface_id = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    return ipaddress.IPv6Address(network.network_address.packed[:8] + interface_id)


def link_local(mac):
    return eui64(mac, LINK_LOCAL)


def multicast_mac(ip6):
    """The Ethernet address of an IPv6 multicast group (RFC 2464 §7)."""
    return "33:33:" + mac_text(b"\0\0" + ipaddress.IPv6Address(ip6).packed[-4:])[6:]


def ethernet(src_mac, dst_mac, ethertype, payload):
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", ethertype) + payload


def ipv4_udp(src_mac, dst_mac, src, dst, sport, dport, payload):
    """An Ethernet frame carrying one UDP datagram over IPv4 (checksums filled in)."""
    src, dst = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    length = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    checksum = _checksum(src + dst + struct.pack("!xBH", IP_PROTO_UDP, length) + udp) or 0xffff
    udp = udp[:6] + struct.pack("!H", checksum) + udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0, 64, IP_PROTO_UDP, 0,
                         src, dst)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return ethernet(src_mac, dst_mac, ETH_TYPE_IP, header + udp)


def _checksum(data):
    """The Internet checksum (RFC 1071) of ``data``."""
    return ~_sum16(data) & 0xffff


def _sum16(data):
    """The one's complement sum of ``data`` as big-endian 16-bit words (an odd byte padded),
    folded to 16 bits."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return total


class Udp4Template:
    """An ``ipv4_udp`` frame sent again and again with a few payload bytes changed (a DHCP
    reply's xid): those bytes are zero in ``frame``, and the UDP checksum is completed from
    the sum of the rest (RFC 1071: the sum does not depend on the order of the words)
    instead of summing the whole datagram each time."""

    __slots__ = ("frame", "_udp", "_sum")

    def __init__(self, frame):
        self.frame = frame
        self._udp = udp = 14 + (frame[14] & 15) * 4
        pseudo = frame[26:34] + b"\0\x11" + frame[udp + 4:udp + 6]
        self._sum = _sum16(pseudo + frame[udp:udp + 6] + frame[udp + 8:])

    def with_payload_bytes(self, offset, data):
        """The frame with ``data`` at ``offset`` of the UDP payload (both even), checksum set."""
        if offset % 2 or len(data) % 2:
            raise ValueError("patched bytes must be whole 16-bit words")
        total, words = self._sum, int.from_bytes(data, "big")
        while words:
            total, words = total + (words & 0xffff), words >> 16
        while total >> 16:
            total = (total & 0xffff) + (total >> 16)
        checksum = ~total & 0xffff or 0xffff    # 0 means "no checksum" in UDP
        frame, udp = self.frame, self._udp
        start = udp + 8 + offset
        return b"".join((frame[:udp + 6], checksum.to_bytes(2, "big"), frame[udp + 8:start],
                         data, frame[start + len(data):]))


def ipv6(src_mac, dst_mac, src, dst, next_header, payload, hop_limit=255):
    """An Ethernet frame carrying ``payload`` (an upper-layer packet, checksum already set)."""
    header = struct.pack("!IHBB", 0x60000000, len(payload), next_header, hop_limit)
    return ethernet(src_mac, dst_mac, ETH_TYPE_IP6, header +
                    ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + payload)


def _checksum6(src, dst, next_header, packet):
    pseudo = ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + \
        struct.pack("!I3xB", len(packet), next_header)
    return _checksum(pseudo + packet)


def icmp6(src_mac, dst_mac, src, dst, icmp_type, body):
    """An ICMPv6 message (hop limit 255, as neighbour discovery requires)."""
    packet = struct.pack("!BBH", icmp_type, 0, 0) + body
    checksum = _checksum6(src, dst, 58, packet)
    packet = packet[:2] + struct.pack("!H", checksum) + packet[4:]
    return ipv6(src_mac, dst_mac, src, dst, 58, packet)


def ipv6_udp(src_mac, dst_mac, src, dst, sport, dport, payload):
    packet = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    checksum = _checksum6(src, dst, 17, packet) or 0xffff
    packet = packet[:6] + struct.pack("!H", checksum) + packet[8:]
    return ipv6(src_mac, dst_mac, src, dst, 17, packet, hop_limit=64)


def na_body(flags, target, target_mac):
    """A neighbour advertisement's body: flags (R=0x80, S=0x40, O=0x20), target, TLLA option."""
    return struct.pack("!B3x", flags) + ipaddress.IPv6Address(target).packed + \
        bytes([2, 1]) + mac_bytes(target_mac)
