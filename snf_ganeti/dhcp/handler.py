"""One queued packet in, one verdict and the frames to send out: the daemon's pure core.

The packet's content, not its queue, says what it is, so a mis-steered packet is still judged
by what it carries.  No input raises: what cannot be parsed is a ``ignored-malformed`` answer.
"""

import logging
import struct
from typing import NamedTuple

import dpkt

from snf_ganeti.dhcp import dhcpv4, ipv6
from snf_ganeti.dhcp.answer import Answer, ignored

log = logging.getLogger(__name__)

ACCEPT, DROP = "accept", "drop"
_MALFORMED = (dpkt.UnpackError, struct.error, ValueError, IndexError, TypeError)


class QueuedPacket(NamedTuple):
    payload: bytes          # from the network header on, as NFQUEUE gives it
    ifindex: int            # the tap it came in on (physindev if bridged, else indev)
    hw: str | None          # the frame's source MAC (lower case), from the queue


class Decision(NamedTuple):
    verdict: str
    answer: Answer | None   # None: not from a bound tap


def handle(packet, lookup, config, duid, templates=None):
    """Judge ``packet``; ``lookup(ifindex)`` gives (Binding, Link of its INDEV) or None;
    ``templates`` (dhcpv4.ReplyTemplates) lets DHCPv4 replies reuse earlier ones."""
    bound = lookup(packet.ifindex)
    if bound is None:
        return Decision(ACCEPT, None)
    binding, link = bound
    try:
        answer = _answer(packet, binding, link, config, duid, templates)
    except _MALFORMED:
        answer = ignored("malformed")
    except Exception:   # a bug must not stop the other VMs' answers
        log.exception("error answering a packet on %s", binding.tap)
        answer = ignored("error")
    return Decision(DROP, answer)


def _answer(packet, binding, link, config, duid, templates):
    version = packet.payload[0] >> 4 if packet.payload else 0
    if version == 4:
        request = dhcpv4.parse_request(packet.payload)
        if request is None:
            return ignored("not-dhcp")
        return dhcpv4.answer(request, binding, link, packet.hw, config, templates)
    if version == 6:
        ip6 = _unpack(dpkt.ip6.IP6, packet.payload)
        inner = ip6.data
        if isinstance(inner, dpkt.icmp6.ICMP6):
            body = inner.data if isinstance(inner.data, bytes) else bytes(inner.data)
            if inner.type == ipv6.RS and inner.code == 0:
                return ipv6.answer_rs(ip6, binding, link, packet.hw, config)
            if inner.type == ipv6.NS and inner.code == 0:
                return ipv6.answer_ns(ip6, body, binding, link, packet.hw)
            return ignored("icmp6-type")
        if isinstance(inner, dpkt.udp.UDP) and inner.dport == ipv6.DHCPV6_SERVER_PORT:
            return ipv6.answer_dhcpv6(ip6, inner.data, binding, link, packet.hw, config, duid)
        return ignored("not-ipv6-query")
    return ignored("malformed")


def _unpack(kind, data):
    """``kind(data)``, where dpkt's own errors on garbage count as malformed: besides
    UnpackError it raises e.g. AttributeError (IPv6 fragment header then another extension)."""
    try:
        return kind(data)
    except Exception as err:
        raise dpkt.UnpackError(f"{kind.__name__}: {err!r}") from None
