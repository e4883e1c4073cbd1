"""DHCPv4 answers (networking spec §3.5, with §3.8's fixes): a pure function of the request,
the binding, the link it goes out on and the configuration."""

import ipaddress
import struct
import types
from typing import NamedTuple

import dpkt

from snf_ganeti import frames
from snf_ganeti.dhcp.answer import Answer, Frame, ignored

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
BROADCAST_FLAG = 0x8000
CLIENT_PORT, SERVER_PORT = 68, 67
# option codes (RFC 2132, RFC 3442)
(NETMASK, ROUTER, DNS, HOSTNAME, DOMAIN, MTU, BROADCAST, REQUESTED_IP, LEASE_TIME, MSG_TYPE,
 SERVER_ID, RENEWAL_TIME, REBINDING_TIME, CLASSLESS_ROUTES) = \
    (1, 3, 6, 12, 15, 26, 28, 50, 51, 53, 54, 58, 59, 121)
_ALL = ipaddress.IPv4Address("255.255.255.255")


class Request(NamedTuple):
    """The fields of a BOOTREQUEST that the answer depends on."""
    op: int
    hrd: int
    hln: int
    xid: int
    flags: int
    ciaddr: int
    giaddr: int
    chaddr: bytes       # hln bytes (at most 16)
    opts: tuple         # ((code, value), ...) in order


_MAGIC = b"\x63\x82\x53\x63"
_FIXED = struct.Struct("!BBBBIHHIIII")


def parse_request(payload):
    """The Request in an IPv4 packet (as NFQUEUE gives it); None if it is not UDP to port 67
    in one unfragmented datagram; ValueError if it is malformed."""
    if len(payload) < 28 or payload[0] >> 4 != 4:
        raise ValueError("not an IPv4 packet")
    header = (payload[0] & 0x0F) * 4
    if header < 20 or payload[9] != 17 or struct.unpack_from("!H", payload, 6)[0] & 0x3FFF:
        return None
    _, dport, length = struct.unpack_from("!HHH", payload, header)
    if dport != SERVER_PORT:
        return None
    message = payload[header + 8:header + length]
    if length < 8 + 240 or len(message) < length - 8 or message[236:240] != _MAGIC:
        raise ValueError("not a BOOTP message with DHCP options")
    op, hrd, hln, _, xid, _, flags, ciaddr, _, _, giaddr = _FIXED.unpack_from(message)
    return Request(op, hrd, hln, xid, flags, ciaddr, giaddr, message[28:28 + min(hln, 16)],
                   _parse_options(message, 240))


def _parse_options(message, at):
    options = []
    while at < len(message):
        code = message[at]
        if code == 255:
            break
        if code == 0:
            at += 1
            continue
        if at + 2 > len(message) or at + 2 + message[at + 1] > len(message):
            raise ValueError("an option runs past the end")
        options.append((code, message[at + 2:at + 2 + message[at + 1]]))
        at += 2 + message[at + 1]
    return tuple(options)


def server_address(binding, config):
    """The source and server identifier: configured, else on-link (GATEWAY or first host)."""
    if config.server_ip:
        return ipaddress.IPv4Address(config.server_ip)
    return binding.gateway or binding.subnet.network_address + 1


def answer(request, binding, link, hw, config, templates=None):
    """The Answer to ``request`` (a Request) from ``hw`` on ``binding``'s tap; ``templates``
    (ReplyTemplates) reuses the frames built for earlier requests."""
    reply = (templates or ReplyTemplates()).reply
    options = dict(request.opts)
    msg_type = options.get(MSG_TYPE, b"")
    if request.op != dpkt.dhcp.DHCP_OP_REQUEST or len(msg_type) != 1:
        return ignored("not-a-request")
    chaddr = frames.mac_text(request.chaddr) if len(request.chaddr) >= 6 else None
    if not binding.macspoof and (hw != binding.mac or chaddr != binding.mac):
        return ignored("foreign-mac")
    hw = hw or chaddr
    if hw is None:
        return ignored("no-mac")
    if binding.ip is None:
        return ignored("no-ipv4")
    server = server_address(binding, config)
    kind = msg_type[0]
    chosen = options.get(SERVER_ID)
    if kind in (REQUEST, INFORM) and chosen is not None and chosen != server.packed:
        return ignored("other-server")
    if kind == DISCOVER:
        return reply("offer", OFFER, request, binding, link, hw, server, config)
    if kind == REQUEST:
        wanted = options.get(REQUESTED_IP) or struct.pack("!I", request.ciaddr)
        if wanted != binding.ip.packed:
            return reply("nak", NAK, request, binding, link, hw, server, config)
        return reply("ack", ACK, request, binding, link, hw, server, config)
    if kind == INFORM:
        return reply("inform", ACK, request, binding, link, hw, server, config)
    return ignored({DECLINE: "decline", RELEASE: "release"}.get(kind, "message-type"))


class ReplyTemplates:
    """Reply frames without their xid, by everything else they are made of: a VM's OFFER and
    ACK are the same but for the xid each time.  An entry holds the binding, link and config
    it was built from, so their ids in its key cannot be reused while it exists."""

    MAX = 4096
    XID_OFFSET = 4      # in the BOOTP message

    def __init__(self):
        self._frames = {}

    def reply(self, name, kind, request, binding, link, hw, server, config):
        key = (name, id(binding), id(link), id(config), hw, request.hrd, request.hln,
               request.flags, request.giaddr, request.chaddr, request.ciaddr)
        cached = self._frames.get(key)
        if cached is None or cached[0] is not binding or cached[1] is not link or \
                cached[2] is not config:
            if len(self._frames) >= self.MAX:
                self._frames.clear()
            template = frames.Udp4Template(
                _frame(name, kind, request, binding, link, hw, server, config, xid=0))
            # Read-only: every ACK built from this template hands out the same mapping.
            lease = types.MappingProxyType({
                "instance": binding.hostname, "tap": binding.tap, "mac": binding.mac,
                "family": "ipv4", "ip": str(binding.ip), "lease_time": config.lease_time,
                "hostname": binding.hostname}) if name == "ack" else None
            cached = self._frames[key] = (binding, link, config, template, lease)
        frame = cached[3].with_payload_bytes(self.XID_OFFSET, request.xid.to_bytes(4, "big"))
        return Answer(name, (Frame(binding.tap, frame),), cached[4])


def _frame(name, kind, request, binding, link, hw, server, config, xid):
    reply = dpkt.dhcp.DHCP(
        op=dpkt.dhcp.DHCP_OP_REPLY, hrd=request.hrd, hln=request.hln, xid=xid,
        flags=request.flags, giaddr=request.giaddr, chaddr=request.chaddr.ljust(16, b"\0"),
        yiaddr=0 if kind == NAK or name == "inform" else int(binding.ip),
        ciaddr=request.ciaddr if name == "inform" else 0,
        opts=_options(name, kind, binding, server, config))
    if kind == NAK or request.flags & BROADCAST_FLAG or (name == "inform" and not request.ciaddr):
        dst, dst_mac = _ALL, frames.BROADCAST_MAC
    elif name == "inform":
        dst, dst_mac = ipaddress.IPv4Address(request.ciaddr), hw
    else:
        dst, dst_mac = binding.ip, hw
    return frames.ipv4_udp(link.mac, dst_mac, server, dst, SERVER_PORT, CLIENT_PORT,
                           bytes(reply))


def domain_of(binding, config):
    if config.domain:
        return config.domain
    _, dot, domain = binding.hostname.partition(".")
    return domain if dot and domain else None


def _options(name, kind, binding, server, config):
    opts = [(MSG_TYPE, bytes([kind])),
            (SERVER_ID, server.packed)]
    if kind == NAK:
        return opts
    if name != "inform":
        t2 = config.rebinding_time or config.lease_time * 7 // 8
        opts += [(LEASE_TIME, struct.pack("!I", config.lease_time)),
                 (RENEWAL_TIME, struct.pack("!I", config.renewal_time)),
                 (REBINDING_TIME, struct.pack("!I", t2)),
                 (NETMASK, binding.subnet.netmask.packed),
                 (BROADCAST, binding.subnet.broadcast_address.packed)]
        router = binding.gateway if not binding.private else None
        if router is not None:
            opts.append((ROUTER, router.packed))
        if config.routes:
            opts.append((CLASSLESS_ROUTES, classless_routes(config.routes, router)))
    if config.nameservers:
        opts.append((DNS,
                     b"".join(ipaddress.IPv4Address(ns).packed for ns in config.nameservers)))
    domain = domain_of(binding, config)
    if domain:
        opts.append((DOMAIN, domain.encode()))
    opts.append((HOSTNAME, binding.hostname.encode()))
    mtu = binding.mtu or config.mtu
    if mtu and name != "inform":
        opts.append((MTU, struct.pack("!H", mtu)))
    return [(code, chunk) for code, data in opts for chunk in _split(data)]


def _split(data):
    """Options longer than 255 bytes go as consecutive instances (RFC 3396)."""
    return [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]


def classless_routes(routes, router):
    """Option 121 (RFC 3442). Clients then ignore option 3, so the default route is added."""
    encoded = b""
    wanted = [r.split() for r in routes]
    if router is not None and not any(dest == "0.0.0.0/0" for dest, _ in wanted):
        wanted.append(["0.0.0.0/0", "gateway"])
    for dest, via in wanted:
        if via == "gateway":
            if router is None:
                continue
            via = router
        network = ipaddress.IPv4Network(dest)
        width = (network.prefixlen + 7) // 8
        encoded += bytes([network.prefixlen]) + network.network_address.packed[:width] + \
            ipaddress.IPv4Address(via).packed
    return encoded
