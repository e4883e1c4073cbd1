"""The environment Ganeti gives its KVM NIC script, parsed into a typed NIC.

Ganeti 3.0 runs ``/etc/ganeti/kvm-vif-bridge`` with no arguments: everything
is in the environment (networking spec §1.2). Every problem is an EnvVarError
naming the variable, raised before anything on the host is touched.
"""

import ipaddress
import re
from dataclasses import dataclass

from snf_ganeti.errors import EnvVarError

MODES = ("bridged", "routed", "openvswitch")
_MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_PREFIX_RE = re.compile(r"^([0-9a-f]{2}:){2}[0-9a-f]{2}$")
_IFNAME_RE = re.compile(r"^[^\s/:]{1,15}$")
# Ganeti's instance-communication taps belong to its own kvm-ifup-os.
COMMUNICATION_TAP_PREFIX = "gnt.com."


@dataclass(frozen=True)
class Network:
    """The Ganeti network a NIC is on, from its ``NETWORK_*`` variables (NIC script and hooks)."""

    name: str | None
    uuid: str | None
    subnet: ipaddress.IPv4Network | None
    gateway: ipaddress.IPv4Address | None
    subnet6: ipaddress.IPv6Network | None
    gateway6: ipaddress.IPv6Address | None
    mac_prefix: str | None
    tags: tuple = ()


@dataclass(frozen=True)
class Nic:
    """The NIC the NIC script runs for: its instance, tap, MAC, mode and link, address, network."""

    instance: str
    tap: str
    mac: str
    mode: str
    link: str | None
    ip: ipaddress.IPv4Address | None
    index: int | None
    name: str | None
    uuid: str | None
    tags: tuple
    vlan: str
    network: Network | None

    @property
    def is_communication_tap(self):
        return self.tap.startswith(COMMUNICATION_TAP_PREFIX)


def parse_tap(environ):
    """Just the tap name (INTERFACE): all that ifdown needs."""
    return EnvReader(environ).required("INTERFACE", _ifname)


def parse_env(environ):
    """The Nic described by ``environ`` (a mapping like os.environ)."""
    get = EnvReader(environ)
    tap = parse_tap(environ)
    mode = get.required("MODE", _one_of(MODES))
    nic = Nic(
        instance=get.required("INSTANCE", str),
        tap=tap,
        mac=get.required("MAC", mac_address),
        mode=mode,
        link=get.optional("LINK", _ifname),  # a bridge, or a routing table (name or number)
        ip=get.optional("IP", ipv4_address),
        index=get.optional("INTERFACE_INDEX", _index),
        name=get.optional("INTERFACE_NAME", str),
        uuid=get.optional("INTERFACE_UUID", str),
        tags=tuple(get.optional("TAGS", str.split) or ()),
        vlan=get.optional("VLAN", _vlan) or "",
        network=parse_network(get),
    )
    if nic.mode in ("bridged", "routed") and not nic.link and not nic.is_communication_tap:
        raise EnvVarError("LINK", f"is required in {nic.mode} mode")
    return nic


def parse_network(get):
    name = get.optional("NETWORK_NAME", str)
    uuid = get.optional("NETWORK_UUID", str)
    subnet = get.optional("NETWORK_SUBNET", _network4)
    subnet6 = get.optional("NETWORK_SUBNET6", _network6)
    network = Network(
        name=name, uuid=uuid, subnet=subnet,
        gateway=get.optional("NETWORK_GATEWAY", ipv4_address),
        subnet6=subnet6,
        gateway6=get.optional("NETWORK_GATEWAY6", _ipv6),
        mac_prefix=get.optional("NETWORK_MAC_PREFIX", _mac_prefix),
        tags=tuple(get.optional("NETWORK_TAGS", str.split) or ()))
    return network if (name or uuid or subnet or subnet6) else None


class EnvReader:
    """Typed reads of environment variables named ``prefix + key``; errors name the variable."""

    def __init__(self, environ, prefix=""):
        self.environ, self.prefix = environ, prefix

    def optional(self, key, convert):
        name = self.prefix + key
        value = self.environ.get(name, "")
        if value == "":
            return None
        try:
            return convert(value)
        except ValueError as err:
            raise EnvVarError(name, f"{value!r} {err}" if str(err) else f"{value!r} is not valid") \
                from None

    def required(self, key, convert):
        value = self.optional(key, convert)
        if value is None:
            raise EnvVarError(self.prefix + key, "missing (is this script run by Ganeti?)")
        return value


def _ifname(value):
    if not _IFNAME_RE.match(value) or value in (".", ".."):
        raise ValueError("is not an interface name")
    return value


def _one_of(choices):
    def convert(value):
        if value not in choices:
            raise ValueError(f"is not one of {', '.join(choices)}")
        return value
    return convert


def mac_address(value):
    value = value.lower()
    if not _MAC_RE.match(value):
        raise ValueError("is not a MAC address")
    if int(value[:2], 16) & 1:
        raise ValueError("is a multicast MAC address")
    return value


def _mac_prefix(value):
    value = value.lower()
    if not _PREFIX_RE.match(value):
        raise ValueError("is not a 3-octet MAC prefix")
    return value


def _index(value):
    if not value.isdigit():
        raise ValueError("is not a NIC index")
    return int(value)


def _vlan(value):
    if not re.match(r"^[.:]?\d+(:\d+)*$", value):
        raise ValueError("is not a Ganeti VLAN (.N, :N[:M...] or .N:M...)")
    return value


def _parsed(kind, what):
    def convert(value):
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"is not {what}") from None
    return convert


ipv4_address = _parsed(ipaddress.IPv4Address, "an IPv4 address")
_ipv6 = _parsed(ipaddress.IPv6Address, "an IPv6 address")
_network4 = _parsed(ipaddress.IPv4Network, "an IPv4 network (address/length, host bits zero)")
_network6 = _parsed(ipaddress.IPv6Network, "an IPv6 network (address/length, host bits zero)")
