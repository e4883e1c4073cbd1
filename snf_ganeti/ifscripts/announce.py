"""Tell the uplink's segment that a routed VM's address now lives behind this node.

Gratuitous ARP (a request and a reply, as arping -U and -A send) and an
unsolicited neighbour advertisement, written on a packet socket: no
arping/ndsend needed, and no global ``ip_nonlocal_bind`` flip as the original
did (networking spec §2.3, §2.11).
"""

import ipaddress
import logging
import socket
import struct

import dpkt

log = logging.getLogger(__name__)

BROADCAST = b"\xff" * 6
ALL_NODES = ipaddress.IPv6Address("ff02::1")


def _mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", ""))


def garp_frames(mac, ip):
    """The gratuitous ARP request and reply announcing ``ip`` at ``mac``."""
    hw, addr = _mac_bytes(mac), ipaddress.IPv4Address(ip).packed
    frames = []
    for op, target_hw in ((dpkt.arp.ARP_OP_REQUEST, b"\x00" * 6), (dpkt.arp.ARP_OP_REPLY, hw)):
        arp = dpkt.arp.ARP(op=op, sha=hw, spa=addr, tha=target_hw, tpa=addr)
        frames.append(bytes(dpkt.ethernet.Ethernet(dst=BROADCAST, src=hw,
                                                   type=dpkt.ethernet.ETH_TYPE_ARP, data=arp)))
    return frames


def na_frame(mac, source, target):
    """An unsolicited neighbour advertisement (override) for ``target`` to all nodes."""
    hw = _mac_bytes(mac)
    src = ipaddress.IPv6Address(source).packed
    dst = ALL_NODES.packed
    # flags: Override (router and solicited clear); then the target link-layer address option.
    body = struct.pack("!I", 0x20000000) + ipaddress.IPv6Address(target).packed + \
        bytes([2, 1]) + hw
    header = struct.pack("!BBH", dpkt.icmp6.ND_NEIGHBOR_ADVERT, 0, 0)
    pseudo = src + dst + struct.pack("!I3xB", len(header) + len(body), 58)
    checksum = dpkt.in_cksum(pseudo + header + body)
    icmp = struct.pack("!BBH", dpkt.icmp6.ND_NEIGHBOR_ADVERT, 0, checksum) + body
    ip6 = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + src + dst
    return b"\x33\x33\x00\x00\x00\x01" + hw + struct.pack("!H", dpkt.ethernet.ETH_TYPE_IP6) + \
        ip6 + icmp


def send(device, frames):
    """Write raw frames on ``device``; failures are logged, never fatal."""
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
            sock.bind((device, 0))
            for frame in frames:
                sock.send(frame)
    except OSError as err:
        log.warning("could not announce on %s: %s", device, err.strerror)


def gratuitous_arp(device, mac, ip):
    send(device, garp_frames(mac, ip))


def unsolicited_na(device, mac, address):
    from snf_ganeti.ifscripts.plan import link_local
    send(device, [na_frame(mac, link_local(mac), address)])
