"""DHCPv4 answers through ``handler.handle`` (networking spec §3.5, with §3.8's fixes)."""

import ipaddress
import struct

import pytest

from snf_ganeti.errors import ConfigError
from tests.support.dhcp_packets import (
    BRIDGE_MAC, BROADCAST_MAC, CONFIG, IFINDEX, LINK_MAC, OTHER_MAC, VM_IP, VM_MAC, answer_of,
    binding, dhcp4_reply, dhcp4_request, dhcp_config, handle, ip4, only_frame,
    parse_dhcp4)

pytestmark = pytest.mark.unit

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
GATEWAY = ipaddress.IPv4Address("192.0.2.1").packed
IP = ipaddress.IPv4Address(VM_IP).packed


def packed(*addresses):
    return b"".join(ipaddress.IPv4Address(a).packed for a in addresses)


def u32(value):
    return struct.pack("!I", value)


def requested(ip=VM_IP):
    return (50, ipaddress.IPv4Address(ip).packed)


EXPECTED = {
    54: GATEWAY, 51: u32(604800), 58: u32(3600), 59: u32(604800 * 7 // 8),
    1: packed("255.255.255.0"), 28: packed("192.0.2.255"), 3: GATEWAY,
    6: packed("192.0.2.53", "192.0.2.54"), 15: b"example.org", 12: b"vm1.example.org"}


def test_discover_gets_an_offer_with_every_option():
    answer, reply = dhcp4_reply(dhcp4_request(DISCOVER))
    assert answer.kind == "offer"
    assert answer.lease is None
    assert reply.dhcp.op == 2
    assert reply.dhcp.yiaddr == ip4(VM_IP)
    assert reply.options == {53: bytes([OFFER]), **EXPECTED}


def test_request_gets_an_ack_with_a_lease():
    answer, reply = dhcp4_reply(dhcp4_request(REQUEST, options=[requested()]))
    assert answer.kind == "ack"
    assert answer.lease == {"instance": "vm1.example.org", "tap": "tap0", "mac": VM_MAC,
                            "family": "ipv4", "ip": VM_IP, "lease_time": 604800,
                            "hostname": "vm1.example.org"}
    assert reply.dhcp.yiaddr == ip4(VM_IP)
    assert reply.options == {53: bytes([ACK]), **EXPECTED}


def test_reply_goes_from_the_link_to_the_binding_ip_and_client_mac():
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER))
    assert (reply.eth_src, reply.eth_dst) == (LINK_MAC, VM_MAC)
    assert (reply.ip_src, reply.ip_dst) == ("192.0.2.1", VM_IP)
    assert (reply.udp.sport, reply.udp.dport) == (67, 68)
    assert reply.ip.ttl == 64


def test_xid_flags_and_chaddr_are_echoed():
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER, xid=0xDEAD0042))
    assert reply.dhcp.xid == 0xDEAD0042
    assert reply.dhcp.chaddr == bytes.fromhex("020000000010")
    assert reply.dhcp.hln == 6


def test_broadcast_flag_is_honoured():
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER, flags=0x8000))
    assert (reply.eth_dst, reply.ip_dst) == (BROADCAST_MAC, "255.255.255.255")
    assert reply.dhcp.flags == 0x8000


@pytest.mark.parametrize("config, hostname, domain", [
    (CONFIG, "vm1.example.org", b"example.org"),
    (CONFIG, "vm1.a.b.example", b"a.b.example"),
    (dhcp_config(domain="cluster.test"), "vm1.example.org", b"cluster.test"),
    (dhcp_config(domain="cluster.test"), "vm1", b"cluster.test"),
    (CONFIG, "vm1", None),
    (CONFIG, "vm1.", None),
])
def test_domain_option(config, hostname, domain):
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER), bound=binding(HOSTNAME=hostname),
                           config=config)
    assert reply.options.get(15) == domain
    assert reply.options[12] == hostname.encode()


@pytest.mark.parametrize("binding_mtu, config_mtu, sent", [
    ("1400", None, 1400), ("1400", 9000, 1400), (None, 9000, 9000), (None, None, None)])
def test_mtu_option_binding_wins_over_config(binding_mtu, config_mtu, sent):
    config = dhcp_config(mtu=config_mtu) if config_mtu else CONFIG
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER), bound=binding(MTU=binding_mtu),
                           config=config)
    assert reply.options.get(26) == (struct.pack("!H", sent) if sent else None)


def test_lease_times_come_from_the_config():
    config = dhcp_config(lease_time=1000, renewal_time=300, rebinding_time=700)
    answer, reply = dhcp4_reply(dhcp4_request(REQUEST, options=[requested()]), config=config)
    assert (reply.options[51], reply.options[58], reply.options[59]) == \
        (u32(1000), u32(300), u32(700))
    assert answer.lease["lease_time"] == 1000


def test_no_nameservers_no_option_6():
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER), config=dhcp_config())
    assert 6 not in reply.options


def test_private_has_no_router():
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER), bound=binding(PRIVATE="yes"))
    assert 3 not in reply.options
    assert reply.options[54] == GATEWAY     # still the on-link server address


def test_no_gateway_no_router():
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER), bound=binding(GATEWAY=None))
    assert 3 not in reply.options


ROUTES = ["10.0.0.0/8 192.0.2.254", "198.51.100.0/25 gateway", "192.0.2.128/32 192.0.2.1"]


def test_classless_routes_add_the_default_route():
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER), config=dhcp_config(routes=ROUTES))
    assert reply.options[121] == (
        bytes([8, 10]) + packed("192.0.2.254") +
        bytes([25, 198, 51, 100, 0]) + GATEWAY +
        bytes([32, 192, 0, 2, 128]) + GATEWAY +
        bytes([0]) + GATEWAY)
    assert reply.options[3] == GATEWAY


def test_classless_routes_keep_a_configured_default():
    config = dhcp_config(routes=["0.0.0.0/0 192.0.2.254"])
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER), config=config)
    assert reply.options[121] == bytes([0]) + packed("192.0.2.254")


def test_classless_routes_without_a_router_skip_gateway_routes():
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER), bound=binding(PRIVATE="yes"),
                           config=dhcp_config(routes=ROUTES))
    assert reply.options[121] == bytes([8, 10]) + packed("192.0.2.254") + \
        bytes([32, 192, 0, 2, 128]) + GATEWAY


def test_no_routes_no_option_121():
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER))
    assert 121 not in reply.options


def test_request_for_another_address_gets_a_broadcast_nak():
    answer, reply = dhcp4_reply(dhcp4_request(REQUEST, options=[requested("192.0.2.99")]))
    assert answer.kind == "nak"
    assert answer.lease is None
    assert reply.options == {53: bytes([NAK]), 54: GATEWAY}
    assert reply.dhcp.yiaddr == 0
    assert (reply.eth_dst, reply.ip_dst) == (BROADCAST_MAC, "255.255.255.255")
    assert (reply.eth_src, reply.ip_src) == (LINK_MAC, "192.0.2.1")


def test_renewing_request_uses_ciaddr_and_gets_an_ack():
    request = dhcp4_request(REQUEST, ciaddr=VM_IP, src=VM_IP, dst="192.0.2.1")
    answer, reply = dhcp4_reply(request)
    assert answer.kind == "ack"
    assert reply.dhcp.yiaddr == ip4(VM_IP)
    assert (reply.eth_dst, reply.ip_dst) == (VM_MAC, VM_IP)


def test_renewing_request_with_a_stale_ciaddr_gets_a_nak():
    answer, _ = dhcp4_reply(dhcp4_request(REQUEST, ciaddr="192.0.2.99"))
    assert answer.kind == "nak"


@pytest.mark.parametrize("config, bound, server", [
    (dhcp_config(server_ip="198.51.100.1"), binding(), "198.51.100.1"),
    (CONFIG, binding(), "192.0.2.1"),
    (CONFIG, binding(GATEWAY=None), "192.0.2.1"),
    (CONFIG, binding(GATEWAY=None, IP="10.1.2.3", SUBNET="10.1.0.0/16"), "10.1.0.1"),
    (CONFIG, binding(GATEWAY="192.0.2.254"), "192.0.2.254"),
])
def test_server_identifier(config, bound, server):
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER), bound=bound, config=config)
    assert reply.options[54] == ipaddress.IPv4Address(server).packed
    assert reply.ip_src == server


def test_request_naming_another_server_is_ignored():
    answer = answer_of(dhcp4_request(REQUEST, options=[requested(), (54, packed("192.0.2.7"))]))
    assert (answer.kind, answer.frames) == ("ignored-other-server", ())


def test_request_naming_us_is_acked():
    answer, _ = dhcp4_reply(dhcp4_request(REQUEST, options=[requested(), (54, GATEWAY)]))
    assert answer.kind == "ack"


def test_inform_gets_an_ack_without_lease_options_sent_to_ciaddr():
    request = dhcp4_request(INFORM, ciaddr="192.0.2.77", src="192.0.2.77", dst="192.0.2.1")
    answer, reply = dhcp4_reply(request, config=dhcp_config(
        nameservers=["192.0.2.53"], mtu=1400, routes=ROUTES))
    assert answer.kind == "inform"
    assert answer.lease is None
    assert reply.dhcp.yiaddr == 0
    assert reply.dhcp.ciaddr == ip4("192.0.2.77")
    assert reply.options == {53: bytes([ACK]), 54: GATEWAY, 6: packed("192.0.2.53"),
                             15: b"example.org", 12: b"vm1.example.org"}
    assert (reply.eth_dst, reply.ip_dst) == (VM_MAC, "192.0.2.77")


def test_inform_without_ciaddr_is_broadcast():
    request = dhcp4_request(INFORM, src="0.0.0.0", dst="255.255.255.255")
    answer, reply = dhcp4_reply(request)
    assert answer.kind == "inform"
    assert (reply.eth_dst, reply.ip_dst) == ("ff:ff:ff:ff:ff:ff", "255.255.255.255")


@pytest.mark.parametrize("msg_type, kind", [
    (DECLINE, "ignored-decline"), (RELEASE, "ignored-release"), (OFFER, "ignored-message-type"),
    (ACK, "ignored-message-type"), (200, "ignored-message-type")])
def test_other_message_types_get_no_frames(msg_type, kind):
    answer = answer_of(dhcp4_request(msg_type, options=[requested()]))
    assert (answer.kind, answer.frames) == (kind, ())


def test_no_message_type_gets_no_frames():
    answer = answer_of(dhcp4_request(None))
    assert (answer.kind, answer.frames) == ("ignored-not-a-request", ())


def test_not_dhcp_gets_no_frames():
    payload = bytearray(dhcp4_request(DISCOVER))
    payload[22:24] = struct.pack("!H", 68)      # UDP destination port
    answer = answer_of(bytes(payload))
    assert (answer.kind, answer.frames) == ("ignored-not-dhcp", ())


@pytest.mark.parametrize("hw, chaddr", [(OTHER_MAC, VM_MAC), (VM_MAC, OTHER_MAC),
                                        (OTHER_MAC, OTHER_MAC), (None, VM_MAC)])
def test_foreign_mac_is_ignored(hw, chaddr):
    answer = answer_of(dhcp4_request(DISCOVER, mac=chaddr), hw=hw)
    assert (answer.kind, answer.frames) == ("ignored-foreign-mac", ())


def test_upper_case_binding_mac_matches():
    answer, reply = dhcp4_reply(dhcp4_request(DISCOVER), bound=binding(MAC=VM_MAC.upper()))
    assert answer.kind == "offer"
    assert reply.eth_dst == VM_MAC


def test_macspoof_answers_another_mac():
    answer, reply = dhcp4_reply(dhcp4_request(DISCOVER, mac=OTHER_MAC), hw=OTHER_MAC,
                                bound=binding(MACSPOOF="yes"))
    assert answer.kind == "offer"
    assert reply.eth_dst == OTHER_MAC
    assert reply.dhcp.chaddr == bytes.fromhex(OTHER_MAC.replace(":", ""))


def test_macspoof_without_hw_answers_chaddr():
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER, mac=OTHER_MAC), hw=None,
                           bound=binding(MACSPOOF="yes"))
    assert reply.eth_dst == OTHER_MAC


def test_binding_without_ip_gets_no_answer():
    answer = answer_of(dhcp4_request(DISCOVER), bound=binding(IP=None, SUBNET=None))
    assert (answer.kind, answer.frames) == ("ignored-no-ipv4", ())


def test_unknown_tap_is_accepted_without_answer():
    decision = handle(dhcp4_request(DISCOVER), ifindex=IFINDEX + 1)
    assert (decision.verdict, decision.answer) == ("accept", None)


@pytest.mark.parametrize("payload", [
    b"", b"\x45", b"\x00" * 40, dhcp4_request(DISCOVER)[:30],
    dhcp4_request(DISCOVER, mac=OTHER_MAC), dhcp4_request(RELEASE), dhcp4_request(DISCOVER)])
def test_bound_tap_is_always_dropped(payload):
    decision = handle(payload)
    assert decision.verdict == "drop"
    assert decision.answer is not None and decision.answer.kind != "ignored-error"


def test_truncated_packet_is_malformed():
    answer = answer_of(dhcp4_request(DISCOVER)[:30])
    assert (answer.kind, answer.frames) == ("ignored-malformed", ())


def test_routes_config_takes_addresses_and_the_word_gateway():
    """A literal gateway address used to be refused (an IPv4Address is always truthy)."""
    assert dhcp_config(routes=ROUTES).routes == tuple(ROUTES)


@pytest.mark.parametrize("route", ["10.0.0.0/8", "10.0.0.0/8 router", "10.0.0.1/8 gateway",
                                   "10.0.0.0/8 192.0.2.1 x", "2001:db8::/32 gateway"])
def test_routes_config_refuses_bad_routes(route):
    with pytest.raises(ConfigError) as caught:
        dhcp_config(routes=[route])
    assert str(caught.value) == f"<string>: dhcp.routes: {route!r} is not 'CIDR GATEWAY' " \
                                "(GATEWAY: an address or the word gateway)"


def test_bridged_binding_answers_from_the_bridge_mac():
    _, reply = dhcp4_reply(dhcp4_request(DISCOVER), bound=binding(INDEV="br0"))
    assert (reply.eth_src, reply.eth_dst) == (BRIDGE_MAC, VM_MAC)


@pytest.mark.parametrize("offset", [14 + 10, 14 + 20 + 6, 14 + 20 + 8 + 4])
def test_checksum_check_catches_a_flipped_byte(offset):
    """What every reply above passes: IP header and UDP checksums recomputed from the bytes."""
    frame = bytearray(only_frame(answer_of(dhcp4_request(DISCOVER))))
    parse_dhcp4(bytes(frame))
    frame[offset] ^= 0x01
    with pytest.raises(AssertionError, match="checksum"):
        parse_dhcp4(bytes(frame))
