"""Router advertisements, neighbour advertisements and stateless DHCPv6 replies
(networking spec §3.6, with §3.8's fixes): pure functions of the packet and the binding.

The router the VM sees is the link-local EUI-64 address of the binding's INDEV.  Only routed
bindings (INDEV is the tap) get RAs and NAs: on a bridge, the segment's own router and
neighbours answer, and an RA from every node would make each one a router there.
"""

import ipaddress
import struct
import uuid

from snf_ganeti import frames
from snf_ganeti.dhcp.answer import Answer, Frame, ignored
from snf_ganeti.dhcp.dhcpv4 import domain_of

RS, RA, NS, NA = 133, 134, 135, 136
ROUTER_LIFETIME = 14400
INFINITE = 0xFFFFFFFF
DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT = 546, 547
INFORMATION_REQUEST, REPLY = 11, 7
OPT_CLIENTID, OPT_SERVERID, OPT_DNS_SERVERS, OPT_DOMAIN_LIST = 1, 2, 23, 24
_UNSPECIFIED = ipaddress.IPv6Address("::")


def server_duid(machine_id):
    """A DUID-UUID (RFC 6355) from the host's machine-id: the same on every reply and restart."""
    try:
        return struct.pack("!H", 4) + uuid.UUID(machine_id.strip()).bytes
    except ValueError:
        return struct.pack("!H", 4) + uuid.uuid5(uuid.NAMESPACE_DNS, machine_id).bytes


def router_address(link):
    return frames.link_local(link.mac)


def router_advertisement(binding, link, config):
    """The RA for ``binding`` (to all nodes), or None if it gets none."""
    if binding.subnet6 is None or not binding.routed:
        return None
    managed_other = 0x40 if config.ipv6_mode == "slaac+dhcpv6" else 0
    lifetime = 0 if binding.private else ROUTER_LIFETIME
    # cur hop limit 0 (unspecified), M=0, O per mode, router preference high (01 << 3)
    body = struct.pack("!BBHII", 0, managed_other | 0x08, lifetime, 0, 0)
    # on-link; autonomous only where SLAAC can work (a /64); router address (R) with GATEWAY6
    flags = 0x80 | (0x40 if binding.subnet6.prefixlen == 64 else 0)
    prefix = binding.subnet6.network_address
    if binding.gateway6 is not None:
        prefix, flags = binding.gateway6, flags | 0x20
    body += struct.pack("!BBBBII4x", 3, 4, binding.subnet6.prefixlen, flags, INFINITE,
                        INFINITE) + prefix.packed
    body += bytes([1, 1]) + frames.mac_bytes(link.mac)          # source link-layer address
    mtu = binding.mtu or config.mtu
    if mtu:
        body += struct.pack("!BBHI", 5, 1, 0, mtu)
    if config.nameservers6:
        servers = [ipaddress.IPv6Address(ns).packed for ns in config.nameservers6]
        body += struct.pack("!BBHI", 25, 1 + 2 * len(servers), 0, 3 * config.ra_period) + \
            b"".join(servers)
    frame = frames.icmp6(link.mac, frames.multicast_mac(frames.ALL_NODES),
                         router_address(link), frames.ALL_NODES, RA, body)
    return Frame(binding.tap, frame)


def _mac_allowed(binding, hw):
    return binding.macspoof or hw == binding.mac


def _unicast_refusal(binding, hw):
    """Why a unicast answer to ``hw`` is not sent, or None (MACSPOOF may leave hw None)."""
    if not _mac_allowed(binding, hw):
        return ignored("foreign-mac")
    return ignored("no-mac") if hw is None else None


def answer_rs(ip6, binding, link, hw, config):
    if ip6.hlim != 255:
        return ignored("hop-limit")
    if not _mac_allowed(binding, hw):
        return ignored("foreign-mac")
    frame = router_advertisement(binding, link, config)
    return Answer("ra", (frame,)) if frame else ignored("no-ipv6")


def answer_ns(ip6, icmp_body, binding, link, hw):
    if ip6.hlim != 255 or len(icmp_body) < 20:
        return ignored("malformed")
    source = ipaddress.IPv6Address(ip6.src)
    if source == _UNSPECIFIED:
        return ignored("dad")       # the VM checks its own address: silence means "yours"
    refusal = _unicast_refusal(binding, hw)
    if refusal:
        return refusal
    if binding.subnet6 is None or not binding.routed:
        return ignored("no-ipv6")
    target = ipaddress.IPv6Address(icmp_body[4:20])
    router = router_address(link)
    own = {frames.eui64(binding.mac, binding.subnet6), frames.link_local(binding.mac)}
    if target in own or (target != router and target not in binding.subnet6):
        return ignored("target")
    flags = 0x80 | 0x40                                         # router, solicited
    frame = frames.icmp6(link.mac, hw, router, source, NA,
                         frames.na_body(flags, target, link.mac))
    return Answer("na", (Frame(binding.tap, frame),))


def answer_dhcpv6(ip6, udp_payload, binding, link, hw, config, duid):
    if len(udp_payload) < 4:
        return ignored("malformed")
    refusal = _unicast_refusal(binding, hw)
    if refusal:
        return refusal
    if binding.subnet6 is None:
        return ignored("no-ipv6")
    if udp_payload[0] != INFORMATION_REQUEST:
        return ignored("stateful-dhcpv6")
    options = parse_dhcpv6_options(udp_payload[4:])
    if options is None:
        return ignored("malformed")
    reply = bytes([REPLY]) + udp_payload[1:4]
    if OPT_CLIENTID in options:
        reply += _option6(OPT_CLIENTID, options[OPT_CLIENTID])
    reply += _option6(OPT_SERVERID, duid)
    if config.nameservers6:
        reply += _option6(OPT_DNS_SERVERS, b"".join(
            ipaddress.IPv6Address(ns).packed for ns in config.nameservers6))
    domain = domain_of(binding, config)
    if domain:
        reply += _option6(OPT_DOMAIN_LIST, dns_name(domain))
    frame = frames.ipv6_udp(link.mac, hw, router_address(link), ipaddress.IPv6Address(ip6.src),
                            DHCPV6_SERVER_PORT, DHCPV6_CLIENT_PORT, reply)
    return Answer("dhcpv6-reply", (Frame(binding.tap, frame),))


def parse_dhcpv6_options(data):
    """{code: value} of a DHCPv6 option block; None if an option runs past the end."""
    options = {}
    while data:
        if len(data) < 4:
            return None
        code, length = struct.unpack("!HH", data[:4])
        if len(data) < 4 + length:
            return None
        options.setdefault(code, data[4:4 + length])
        data = data[4 + length:]
    return options


def _option6(code, value):
    return struct.pack("!HH", code, len(value)) + value


def dns_name(name):
    """A domain name in DNS wire format (RFC 1035 §3.1), as option 24 carries it."""
    labels = [label.encode()[:63] for label in name.strip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"
