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

from snf_ganeti import frames

log = logging.getLogger(__name__)
# Written by hand rather than with dpkt: its import alone would add 40 ms to every ifup.
ARP_OP_REQUEST, ARP_OP_REPLY = 1, 2
ND_NEIGHBOR_ADVERT = 136


def garp_frames(mac, ip):
    """The gratuitous ARP request and reply announcing ``ip`` at ``mac``."""
    hw, addr = frames.mac_bytes(mac), ipaddress.IPv4Address(ip).packed
    result = []
    for op, target_hw in ((ARP_OP_REQUEST, b"\x00" * 6), (ARP_OP_REPLY, hw)):
        # Ethernet, IPv4, 6-byte and 4-byte addresses
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, hw, addr, target_hw, addr)
        result.append(frames.ethernet(mac, frames.BROADCAST_MAC, frames.ETH_TYPE_ARP, arp))
    return result


def na_frames(mac, target):
    """An unsolicited neighbour advertisement (override) for ``target`` to all nodes."""
    return [frames.icmp6(mac, frames.multicast_mac(frames.ALL_NODES), frames.link_local(mac),
                         frames.ALL_NODES, ND_NEIGHBOR_ADVERT, frames.na_body(0x20, target, mac))]


class Announcer:
    """Writes frames on devices; failures are logged, never fatal. A context manager.

    One packet socket for all of an ifup's announcements, opened by the first: closing
    one waits for an RCU grace period (8 to 16 ms here), and a routed ifup announces on
    IPv4 and IPv6.
    """

    def __init__(self):
        self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._sock is not None:
            self._sock.close()

    def send(self, device, frame_list):
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            for frame in frame_list:
                self._sock.sendto(frame, (device, 0))
        except OSError as err:
            log.warning("could not announce on %s: %s", device, err.strerror)
