"""RS -> RA, NS -> NA and stateless DHCPv6 through ``handler.handle`` (networking spec §3.6)."""

import ipaddress
import struct
import uuid

import pytest

from snf_ganeti.dhcp import ipv6
from tests.support.dhcp_packets import (
    BRIDGE, BRIDGE_LL, BRIDGE_MAC, CLIENT_ID, CONFIG, DUID, LINK_MAC, OTHER_MAC, ROUTER_LL,
    VM_GLOBAL, VM_LL, VM_MAC, answer_of, binding, dhcp_config, dhcpv6_option, dhcpv6_options,
    dhcpv6_request, icmp6_reply, ip6_packet, nd_options, ns, only_frame, parse_ip6, rs)

pytestmark = pytest.mark.unit

INFINITE = 0xFFFFFFFF
NAMESERVERS6 = ipaddress.IPv6Address("2001:db8::53").packed + \
    ipaddress.IPv6Address("2001:db8::54").packed


def mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", ""))


def ra_for(payload=None, **kw):
    """(Ip6Reply, RA header fields, [(option type, data)]) of the RA answering an RS."""
    answer = answer_of(rs() if payload is None else payload, **kw)
    assert answer.kind == "ra"
    reply, body = icmp6_reply(only_frame(answer), ipv6.RA)
    return reply, struct.unpack("!BBHII", body[:12]), nd_options(body[12:])


def prefix_info(prefix, flags):
    return struct.pack("!BBII4x", 64, flags, INFINITE, INFINITE) + \
        ipaddress.IPv6Address(prefix).packed


def test_rs_gets_an_ra_to_all_nodes_from_the_router_link_local():
    reply, header, _ = ra_for()
    assert (reply.eth_dst, reply.eth_src) == ("33:33:00:00:00:01", LINK_MAC)
    assert (reply.src, reply.dst) == (ipaddress.IPv6Address(ROUTER_LL),
                                      ipaddress.IPv6Address("ff02::1"))
    assert reply.hlim == 255
    # cur hop limit 0, O=1 M=0, preference high, lifetime 14400, timers 0
    assert header == (0, 0x48, 14400, 0, 0)


def test_ra_options():
    _, _, options = ra_for()
    assert options == [
        (3, prefix_info("2001:db8:1::", 0xC0)),
        (1, mac_bytes(LINK_MAC)),
        (25, struct.pack("!HI", 0, 900) + NAMESERVERS6)]


def test_ra_in_slaac_mode_has_no_o_flag_and_keeps_rdnss():
    _, header, options = ra_for(config=dhcp_config(ipv6_mode="slaac", ra_period=10,
                                                   nameservers6=["2001:db8::53"]))
    assert header[1] == 0x08
    assert options[-1] == (25, struct.pack("!HI", 0, 30) +
                           ipaddress.IPv6Address("2001:db8::53").packed)


def test_ra_of_a_private_binding_has_router_lifetime_0():
    _, header, _ = ra_for(bound=binding(PRIVATE="yes"))
    assert header[2] == 0


def test_ra_prefix_is_gateway6_with_the_r_flag():
    _, _, options = ra_for(bound=binding(GATEWAY6="2001:db8:1::1"))
    assert options[0] == (3, prefix_info("2001:db8:1::1", 0xE0))


def test_ra_prefix_that_is_not_a_64_is_on_link_but_not_autonomous():
    _, _, options = ra_for(bound=binding(SUBNET6="2001:db8:1::/56"))
    assert options[0] == (3,
                          struct.pack("!BBII4x", 56, 0x80, INFINITE, INFINITE) +
                          ipaddress.IPv6Address("2001:db8:1::").packed)


@pytest.mark.parametrize("binding_mtu, config_mtu, sent", [
    ("1400", None, 1400), ("1400", 9000, 1400), (None, 9000, 9000)])
def test_ra_mtu_option(binding_mtu, config_mtu, sent):
    config = dhcp_config(mtu=config_mtu) if config_mtu else CONFIG
    _, _, options = ra_for(bound=binding(MTU=binding_mtu), config=config)
    assert (5, struct.pack("!HI", 0, sent)) in options


def test_ra_without_mtu_or_nameservers_has_only_prefix_and_slla():
    _, _, options = ra_for(config=dhcp_config())
    assert [kind for kind, _ in options] == [3, 1]


def test_rs_from_the_unspecified_address_gets_an_ra():
    """The MAC comes from the queue, not from the RS source (nfdhcpd dropped this RS)."""
    _, header, _ = ra_for(rs(src="::", slla=None))
    assert header[2] == 14400


@pytest.mark.parametrize("payload, kw, kind", [
    (rs(hlim=254), {}, "ignored-hop-limit"),
    (rs(), {"hw": OTHER_MAC}, "ignored-foreign-mac"),
    (rs(), {"bound": binding(SUBNET6=None)}, "ignored-no-ipv6"),
    (rs(), {"bound": binding(INDEV=BRIDGE)}, "ignored-no-ipv6"),
])
def test_rs_without_ra(payload, kw, kind):
    answer = answer_of(payload, **kw)
    assert (answer.kind, answer.frames) == (kind, ())


def test_macspoof_rs_from_another_mac_gets_an_ra():
    reply, _, _ = ra_for(bound=binding(MACSPOOF="yes"), hw=OTHER_MAC)
    assert reply.eth_dst == "33:33:00:00:00:01"


def test_router_advertisement_without_subnet6_is_none():
    assert ipv6.router_advertisement(binding(SUBNET6=None), None, CONFIG) is None


def na_for(payload, **kw):
    """(Ip6Reply, flags byte, target, [(option type, data)]) of the NA answering an NS."""
    answer = answer_of(payload, **kw)
    assert answer.kind == "na"
    reply, body = icmp6_reply(only_frame(answer), ipv6.NA)
    assert body[1:4] == b"\0\0\0"
    return reply, body[0], ipaddress.IPv6Address(body[4:20]), nd_options(body[20:])


@pytest.mark.parametrize("target", ["2001:db8:1::1", "2001:db8:1::ff:fe00:11", ROUTER_LL])
def test_ns_for_a_subnet_address_or_the_router_gets_an_na(target):
    reply, flags, got_target, options = na_for(ns(target))
    assert (reply.eth_dst, reply.eth_src) == (VM_MAC, LINK_MAC)
    assert (reply.src, reply.dst) == (ipaddress.IPv6Address(ROUTER_LL),
                                      ipaddress.IPv6Address(VM_LL))
    assert reply.hlim == 255
    assert flags == 0xC0        # router, solicited, not override
    assert got_target == ipaddress.IPv6Address(target)
    assert options == [(2, mac_bytes(LINK_MAC))]


def test_na_goes_to_the_ns_source():
    reply, _, _, _ = na_for(ns("2001:db8:1::1", src=VM_GLOBAL))
    assert reply.dst == ipaddress.IPv6Address(VM_GLOBAL)


def test_ns_without_slla_is_answered():
    """Unicast NS may omit SLLA; the MAC is the queue's (nfdhcpd left these unanswered)."""
    _, _, target, _ = na_for(ns("2001:db8:1::1", slla=None))
    assert target == ipaddress.IPv6Address("2001:db8:1::1")


def test_macspoof_ns_from_another_mac_is_answered_to_that_mac():
    reply, _, _, _ = na_for(ns("2001:db8:1::1"), hw=OTHER_MAC, bound=binding(MACSPOOF="yes"))
    assert reply.eth_dst == OTHER_MAC


@pytest.mark.parametrize("payload, kw, kind", [
    (ns(VM_GLOBAL, src="::", options=b"\x0e\x01" + bytes(6)), {}, "ignored-dad"),
    (ns("2001:db8:1::1", src="::", slla=None), {}, "ignored-dad"),
    (ns(VM_GLOBAL), {}, "ignored-target"),
    (ns(VM_LL), {}, "ignored-target"),
    (ns("2001:db8:2::1"), {}, "ignored-target"),
    (ns("fe80::1"), {}, "ignored-target"),
    (ns("2001:db8:1::1"), {"hw": OTHER_MAC}, "ignored-foreign-mac"),
    (ns("2001:db8:1::1"), {"hw": None}, "ignored-foreign-mac"),
    (ns("2001:db8:1::1"), {"hw": None, "bound": binding(MACSPOOF="yes")}, "ignored-no-mac"),
    (ns("2001:db8:1::1"), {"bound": binding(SUBNET6=None)}, "ignored-no-ipv6"),
    (ns("2001:db8:1::1"), {"bound": binding(INDEV=BRIDGE)}, "ignored-no-ipv6"),
    (ns("2001:db8:1::1", hlim=64), {}, "ignored-malformed"),
    (ns("2001:db8:1::1")[:40 + 4 + 10], {}, "ignored-malformed"),
])
def test_ns_without_na(payload, kw, kind):
    answer = answer_of(payload, **kw)
    assert (answer.kind, answer.frames) == (kind, ())


def dhcpv6_reply(payload=None, **kw):
    """(Ip6Reply, message type, transaction id, [(code, value)]) of a DHCPv6 reply."""
    answer = answer_of(dhcpv6_request() if payload is None else payload, **kw)
    assert answer.kind == "dhcpv6-reply"
    reply = parse_ip6(only_frame(answer))
    assert reply.next_header == 17
    sport, dport, length = struct.unpack("!HHH", reply.payload[:6])
    assert (sport, dport, length) == (547, 546, len(reply.payload))
    message = reply.payload[8:]
    return reply, message[0], message[1:4], dhcpv6_options(message[4:])


def test_information_request_gets_a_reply():
    reply, msg_type, xid, options = dhcpv6_reply()
    assert (reply.eth_dst, reply.eth_src) == (VM_MAC, LINK_MAC)
    assert (reply.src, reply.dst) == (ipaddress.IPv6Address(ROUTER_LL),
                                      ipaddress.IPv6Address(VM_LL))
    assert (msg_type, xid) == (7, b"\xab\xcd\xef")
    assert options == [(1, CLIENT_ID), (2, DUID), (23, NAMESERVERS6),
                       (24, b"\x07example\x03org\x00")]


def test_reply_domain_from_the_config_and_none_without_a_dot():
    _, _, _, options = dhcpv6_reply(config=dhcp_config(domain="a.b.test."))
    assert options[-1] == (24, b"\x01a\x01b\x04test\x00")
    _, _, _, options = dhcpv6_reply(bound=binding(HOSTNAME="vm1"), config=dhcp_config())
    assert [code for code, _ in options] == [1, 2]


def test_reply_without_client_id_has_none():
    _, _, xid, options = dhcpv6_reply(dhcpv6_request(xid=b"\x00\x00\x01", options=b""))
    assert xid == b"\x00\x00\x01"
    assert [code for code, _ in options] == [2, 23, 24]


def test_reply_to_a_bridged_binding_comes_from_the_bridge():
    reply, _, _, _ = dhcpv6_reply(bound=binding(INDEV=BRIDGE))
    assert reply.eth_src == BRIDGE_MAC
    assert reply.src == ipaddress.IPv6Address(BRIDGE_LL)


MACHINE_ID = "0123456789abcdef0123456789abcdef"


def test_server_duid_is_a_stable_duid_uuid():
    duid = ipv6.server_duid(MACHINE_ID + "\n")
    assert duid == b"\x00\x04" + uuid.UUID(MACHINE_ID).bytes
    assert len(duid) == 18
    assert ipv6.server_duid(MACHINE_ID) == duid
    assert ipv6.server_duid("0123456789abcdef0123456789abcdee") != duid


def test_server_duid_of_a_malformed_machine_id_is_still_18_stable_bytes():
    duid = ipv6.server_duid("not-a-uuid")
    assert len(duid) == 18 and duid[:2] == b"\x00\x04"
    assert ipv6.server_duid("not-a-uuid") == duid != ipv6.server_duid("other")


def test_server_id_is_the_same_on_every_reply():
    duid = ipv6.server_duid(MACHINE_ID)
    first, second = (dict(dhcpv6_reply(duid=duid)[3])[2] for _ in range(2))
    assert first == second == duid


@pytest.mark.parametrize("payload, kw, kind", [
    (dhcpv6_request(msg_type=1), {}, "ignored-stateful-dhcpv6"),
    (dhcpv6_request(msg_type=3), {}, "ignored-stateful-dhcpv6"),
    (dhcpv6_request(), {"hw": OTHER_MAC}, "ignored-foreign-mac"),
    (dhcpv6_request(), {"hw": None, "bound": binding(MACSPOOF="yes")}, "ignored-no-mac"),
    (dhcpv6_request(), {"bound": binding(SUBNET6=None)}, "ignored-no-ipv6"),
    (dhcpv6_request(options=dhcpv6_option(1, CLIENT_ID)[:-1]), {}, "ignored-malformed"),
    (dhcpv6_request(options=b"\x00"), {}, "ignored-malformed"),
])
def test_dhcpv6_without_reply(payload, kw, kind):
    answer = answer_of(payload, **kw)
    assert (answer.kind, answer.frames) == (kind, ())


def test_macspoof_dhcpv6_from_another_mac_is_answered_to_that_mac():
    reply, _, _, _ = dhcpv6_reply(hw=OTHER_MAC, bound=binding(MACSPOOF="yes"))
    assert reply.eth_dst == OTHER_MAC


def test_other_icmp6_and_udp_are_not_queries():
    echo = bytearray(ns("2001:db8:1::1"))
    echo[40] = 128              # ICMPv6 type: echo request
    assert answer_of(bytes(echo)).kind == "ignored-icmp6-type"
    other_port = bytearray(dhcpv6_request())
    other_port[42:44] = struct.pack("!H", 546)
    assert answer_of(bytes(other_port)).kind == "ignored-not-ipv6-query"


def test_fragment_then_extension_header_is_malformed_not_an_error():
    """dpkt raises AttributeError on a fragment header followed by another extension."""
    fragment = bytes([0, 0]) + b"\0\0" + b"\0\0\0\1"            # next: hop-by-hop, offset 0
    hop_by_hop = bytes([17, 0]) + b"\1\4\0\0\0\0"               # next: UDP, PadN
    udp = dhcpv6_request()[40:]
    payload = ip6_packet(VM_LL, "ff02::1:2", 44, fragment + hop_by_hop + udp)
    answer = answer_of(payload)
    assert (answer.kind, answer.frames) == ("ignored-malformed", ())
