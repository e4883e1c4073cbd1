import ipaddress

import pytest

from snf_ganeti import config as config_mod
from snf_ganeti.errors import EnvVarError
from snf_ganeti.ifscripts import plan
from snf_ganeti.ifscripts.default_profiles import DEFAULT_PROFILES
from snf_ganeti.ifscripts.firewall import parse_profiles
from snf_ganeti.ifscripts.nic import parse_env

pytestmark = pytest.mark.unit
NETWORK = config_mod.NetworkConfig()
PROFILES = parse_profiles(DEFAULT_PROFILES)
BASE = {"INTERFACE": "tap3", "MODE": "routed", "INSTANCE": "snf-42", "MAC": "AA:6B:39:22:33:44",
        "LINK": "100", "IP": "192.0.2.10", "INTERFACE_INDEX": "0", "INTERFACE_NAME": "snf-nic-7",
        "INTERFACE_UUID": "u-1", "TAGS": "synnefo:network:snf-nic-7:limited other",
        "NETWORK_NAME": "snf-net-1", "NETWORK_SUBNET": "192.0.2.0/24",
        "NETWORK_GATEWAY": "192.0.2.1", "NETWORK_SUBNET6": "2001:db8:aaaa:bbbb::/64",
        "NETWORK_GATEWAY6": "2001:db8:aaaa:bbbb::1", "NETWORK_TAGS": "nfdhcpd ip-less-routed",
        "VLAN": ""}


def planned(**changes):
    env = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    return plan.plan_nic(parse_env(env), NETWORK, PROFILES)


def test_eui64_matches_the_reference_example():
    assert plan.eui64("aa:6b:39:22:33:44", ipaddress.IPv6Network("2001:db8:aaaa:bbbb::/64")) == \
        ipaddress.IPv6Address("2001:db8:aaaa:bbbb:a86b:39ff:fe22:3344")
    assert plan.eui64("aa:6b:39:22:33:44", ipaddress.IPv6Network("2001:db8::/48")) is None
    assert str(plan.link_local("aa:6b:39:22:33:44")) == "fe80::a86b:39ff:fe22:3344"


def test_routed_plan():
    p = planned()
    assert p.mac == "aa:6b:39:22:33:44" and p.bridge is None and p.private is None
    assert p.routed == plan.Routed(100, ipaddress.IPv4Address("192.0.2.10"),
                                   ipaddress.IPv6Address("2001:db8:aaaa:bbbb:a86b:39ff:fe22:3344"),
                                   ipaddress.IPv4Address("192.0.2.1"), 0x534E0064)
    f = p.filter
    assert f.route_mark == 0x534E0064
    assert f.profile == "limited" and f.ipv4 == ("192.0.2.10",)
    assert f.ipv6 == ("2001:db8:aaaa:bbbb:a86b:39ff:fe22:3344", "fe80::a86b:39ff:fe22:3344")
    assert f.mac_prefix is None


def test_binding_file_in_nfdhcpd_format():
    lines = planned().binding.splitlines()
    assert lines == ["INDEV=tap3", "IP=192.0.2.10", "MAC=aa:6b:39:22:33:44", "HOSTNAME=snf-42",
                     "TAGS=synnefo:network:snf-nic-7:limited other", "GATEWAY=192.0.2.1",
                     "SUBNET=192.0.2.0/24", "GATEWAY6=2001:db8:aaaa:bbbb::1",
                     "SUBNET6=2001:db8:aaaa:bbbb::/64",
                     "EUI64=2001:db8:aaaa:bbbb:a86b:39ff:fe22:3344"]
    assert planned(NETWORK_TAGS="").binding is None
    assert planned(MODE="bridged", LINK="br0").binding.startswith("INDEV=br0\n")


def test_private_bridge_gets_transport_and_mac_filter():
    p = planned(MODE="bridged", LINK="prv7", TAGS="")
    assert p.private == plan.PrivateBridge("prv7", "vxlan", 7)
    assert p.filter.mac_prefix == ("aa:6b:30:00:00:00", "ff:ff:f0:00:00:00")
    assert p.filter.profile is None
    assert planned(MODE="bridged", LINK="br0").private is None
    assert planned(MODE="bridged", LINK="br0", NETWORK_TAGS="private-filtered").filter.mac_prefix


@pytest.mark.parametrize("tags, profile", [
    ("synnefo:network:0:protected", "protected"), ("synnefo:network:u-1:unprotected", "unprotected"),
    ("synnefo:network:1:protected", None), ("", None)])
def test_profile_by_index_name_uuid(tags, profile):
    assert planned(TAGS=tags).filter.profile == profile


@pytest.mark.parametrize("changes, variable, problem", [
    ({"INTERFACE": None}, "INTERFACE", "missing"),
    ({"MAC": "aa:bb"}, "MAC", "not a MAC address"),
    ({"MAC": "01:00:5e:00:00:01"}, "MAC", "multicast"),
    ({"IP": "192.0.2.300"}, "IP", "not an IPv4 address"),
    ({"MODE": "wifi"}, "MODE", "not one of"),
    ({"LINK": None}, "LINK", "required"),
    ({"INTERFACE": "tap/0"}, "INTERFACE", "not an interface name"),
    ({"NETWORK_SUBNET": "192.0.2.1/24"}, "NETWORK_SUBNET", "host bits zero"),
    ({"TAGS": "synnefo:network:0:paranoid"}, "TAGS", "'paranoid'"),
    ({"IP": None, "NETWORK_SUBNET6": None}, "IP", "needs an IPv4 address"),
    ({"LINK": "70000"}, "LINK", "outside 1..65535"),
    ({"LINK": "no-such-table"}, "LINK", "neither a routing table number nor a name"),
])
def test_bad_environment_names_the_variable(changes, variable, problem):
    with pytest.raises(EnvVarError) as err:
        planned(**changes)
    message = str(err.value)
    assert message.startswith(f"{variable}: ") and problem in message and "\n" not in message


@pytest.mark.parametrize("changes, ipv4, ipv6", [
    ({"NETWORK_SUBNET6": None}, ("192.0.2.10",), ()),
    ({"IP": None, "NETWORK_SUBNET": None, "NETWORK_GATEWAY": None}, (),
     ("2001:db8:aaaa:bbbb:a86b:39ff:fe22:3344", "fe80::a86b:39ff:fe22:3344"))])
def test_a_routed_nic_sends_nothing_of_a_family_it_has_no_address_of(changes, ipv4, ipv6):
    """Not "unchecked" as on a private network: its packets would be routed with any source."""
    f = planned(**changes).filter
    assert (f.ipv4, f.ipv6) == (ipv4, ipv6)


def test_nic_without_addresses_is_checked_by_mac_only():
    p = planned(MODE="bridged", LINK="prv7", IP=None, NETWORK_SUBNET=None, NETWORK_SUBNET6=None,
                NETWORK_GATEWAY=None, TAGS="")
    assert p.filter.ipv4 is None and p.filter.ipv6 is None and p.filter.mac == "aa:6b:39:22:33:44"
