"""Binding files (networking spec §3.2): nfdhcpd's format, with §3.8's fixes."""

import ipaddress

import pytest

from snf_ganeti.dhcp.binding import Binding, parse_binding
from snf_ganeti.errors import BindingError

pytestmark = pytest.mark.unit

FULL = """\
IP=192.0.2.10
MAC=aa:00:00:11:22:33
HOSTNAME=vm1.example.org
TAGS="nfdhcpd ip-less-routed"
INDEV=tap3
SUBNET=192.0.2.0/24
GATEWAY=192.0.2.1
SUBNET6=2001:db8:1::/64
GATEWAY6=2001:db8:1::1
EUI64=2001:db8:1:0:a800:ff:fe11:2233
MTU=1400
PRIVATE=yes
MACSPOOF=1
UNKNOWN=ignored
"""


def test_full_binding_has_every_key():
    assert parse_binding("tap3", FULL) == Binding(
        tap="tap3", mac="aa:00:00:11:22:33", hostname="vm1.example.org", indev="tap3",
        ip=ipaddress.IPv4Address("192.0.2.10"), subnet=ipaddress.IPv4Network("192.0.2.0/24"),
        gateway=ipaddress.IPv4Address("192.0.2.1"),
        subnet6=ipaddress.IPv6Network("2001:db8:1::/64"),
        gateway6=ipaddress.IPv6Address("2001:db8:1::1"), mtu=1400, private=True, macspoof=True)


def test_minimal_binding_leaves_the_rest_unset():
    got = parse_binding("tap1", "MAC=aa:00:00:11:22:33\nHOSTNAME=vm1\n")
    assert (got.ip, got.subnet, got.gateway, got.subnet6, got.gateway6, got.mtu) == \
        (None,) * 6
    assert (got.private, got.macspoof) == (False, False)


def test_upper_case_mac_is_accepted_and_lower_cased():
    assert parse_binding("tap1", "MAC=AA:00:00:1B:2C:3D\nHOSTNAME=vm1\n").mac == \
        "aa:00:00:1b:2c:3d"


def test_empty_mtu_means_unset():
    """nfdhcpd rejects the whole file on ``MTU=`` (its own README sample has one)."""
    assert parse_binding("tap1", "MAC=aa:00:00:11:22:33\nHOSTNAME=vm1\nMTU=\n").mtu is None


def test_quotes_are_removed():
    got = parse_binding("tap1", "MAC=\"aa:00:00:11:22:33\"\nHOSTNAME='vm1.example.org'\n"
                                "MTU=\"1500\"\n")
    assert (got.mac, got.hostname, got.mtu) == ("aa:00:00:11:22:33", "vm1.example.org", 1500)


def test_later_duplicate_wins_and_indented_lines_are_not_keys():
    got = parse_binding("tap1", "MAC=aa:00:00:11:22:33\nHOSTNAME=a\nHOSTNAME=b\n MTU=9000\n")
    assert (got.hostname, got.mtu) == ("b", None)


def test_indev_defaults_to_the_tap_which_is_routed():
    got = parse_binding("tap1", "MAC=aa:00:00:11:22:33\nHOSTNAME=vm1\n")
    assert got.indev == "tap1"
    assert got.routed is True


def test_indev_of_a_bridge_is_not_routed():
    got = parse_binding("tap1", "MAC=aa:00:00:11:22:33\nHOSTNAME=vm1\nINDEV=br0\n")
    assert got.indev == "br0"
    assert got.routed is False


def test_empty_private_and_macspoof_are_off():
    got = parse_binding("tap1", "MAC=aa:00:00:11:22:33\nHOSTNAME=vm1\nPRIVATE=\nMACSPOOF=\n")
    assert (got.private, got.macspoof) == (False, False)


def error(tap, text):
    with pytest.raises(BindingError) as caught:
        parse_binding(tap, text)
    return str(caught.value)


BASE = "MAC=aa:00:00:11:22:33\nHOSTNAME=vm1\n"
ERRORS = {  # test id: (file text, the exact one-line error for tap1)
    "bad-mac": ("MAC=aa:00:00:11:22\nHOSTNAME=vm1\n",
                "MAC='aa:00:00:11:22' is not a MAC address"),
    "missing-mac": ("HOSTNAME=vm1\n", "MAC='' is not a MAC address"),
    "missing-hostname": ("MAC=aa:00:00:11:22:33\n", "HOSTNAME is missing"),
    "ip-without-subnet": (BASE + "IP=192.0.2.10\n", "IP is set but SUBNET is not"),
    "ip-outside-subnet": (BASE + "IP=198.51.100.10\nSUBNET=192.0.2.0/24\n",
                          "IP=198.51.100.10 is not in SUBNET=192.0.2.0/24"),
    "bad-ip": (BASE + "IP=192.0.2.300\nSUBNET=192.0.2.0/24\n",
               "IP='192.0.2.300' is not an IPv4 address"),
    "bad-subnet": (BASE + "IP=192.0.2.10\nSUBNET=192.0.2.0/33\n",
                   "SUBNET='192.0.2.0/33' is not an IPv4 network"),
    "bad-gateway": (BASE + "GATEWAY=gw\n", "GATEWAY='gw' is not an IPv4 address"),
    "bad-gateway6": (BASE + "GATEWAY6=192.0.2.1\n",
                     "GATEWAY6='192.0.2.1' is not an IPv6 address"),
    "bad-subnet6": (BASE + "SUBNET6=2001:db8::/129\n",
                    "SUBNET6='2001:db8::/129' is not an IPv6 network"),
    "mtu-too-small": (BASE + "MTU=67\n", "MTU=67 is out of range (68-65535)"),
    "mtu-too-large": (BASE + "MTU=65536\n", "MTU=65536 is out of range (68-65535)"),
    "mtu-not-an-integer": (BASE + "MTU=15OO\n", "MTU='15OO' is not an integer"),
    "bad-indev": (BASE + "INDEV=br/0\n", "INDEV='br/0' is not an interface name"),
}


@pytest.mark.parametrize("text, message", ERRORS.values(), ids=ERRORS.keys())
def test_error_names_the_key(text, message):
    assert error("tap1", text) == f"tap1: {message}"


@pytest.mark.parametrize("name", ["", "a/b", "tap 1", "tap:1", "x" * 16])
def test_bad_file_name(name):
    assert error(name, BASE) == f"{name}: file name is not an interface name"


def test_error_is_one_line():
    assert "\n" not in error("tap1", "MAC=aa:00:00:11:22:33\nMTU=a\nb\n")


@pytest.mark.parametrize("mtu", ["68", "65535"])
def test_mtu_bounds_are_accepted(mtu):
    assert parse_binding("tap1", BASE + f"MTU={mtu}\n").mtu == int(mtu)

