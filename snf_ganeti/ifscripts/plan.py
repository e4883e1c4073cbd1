"""What the host should look like for one NIC: the pure core of ifup.

``plan_nic`` turns a parsed :class:`~snf_ganeti.ifscripts.nic.Nic` and the
configuration into a :class:`NicPlan` (plain data). Applying it is
``apply.py``'s job; nothing here touches the host.
"""

import ipaddress
import os
from dataclasses import dataclass

from snf_ganeti import pathutils
from snf_ganeti.errors import EnvVarError
from snf_ganeti.frames import eui64, link_local
from snf_ganeti.ganeti.tags import firewall_profiles
from snf_ganeti.ifscripts.firewall import NicFilter

DHCP_NETWORK_TAGS = ("nfdhcpd", "dhcp")
MAC_FILTERED_NETWORK_TAG = "private-filtered"


@dataclass(frozen=True)
class PrivateBridge:
    """A private-network bridge snf-ganeti creates on demand."""

    name: str
    transport: str        # "vlan" or "vxlan"
    segment: int          # VLAN id or VXLAN VNI


@dataclass(frozen=True)
class Routed:
    """What a routed NIC needs: its link's routing table and mark, and the VM's addresses."""

    table: int            # the link's routing table, by number
    ipv4: ipaddress.IPv4Address | None
    ipv6: ipaddress.IPv6Address | None
    gateway: ipaddress.IPv4Address | None
    mark: int             # the firewall mark that selects the table (one policy rule per link)


@dataclass(frozen=True)
class NicPlan:
    """What the host should have for one NIC: bridge or routes, firewall filter, DHCP binding."""

    tap: str
    instance: str
    mode: str
    mac: str
    bridge: str | None
    private: PrivateBridge | None
    routed: Routed | None
    filter: NicFilter
    binding: str | None       # the DHCP binding file's content, if the NIC asks for DHCP
    ipv6: ipaddress.IPv6Address | None
    link_local: ipaddress.IPv6Address


def plan_nic(nic, network_config, profiles, rt_tables=pathutils.RT_TABLES):
    """The NicPlan for ``nic``; EnvVarError for anything the config cannot serve."""
    profile = firewall_profile(nic, profiles)
    network = nic.network
    ipv6 = eui64(nic.mac, network.subnet6) if network else None
    private = private_bridge(nic, network_config) if nic.mode == "bridged" else None
    net_tags = network.tags if network else ()
    mac_filtered = private is not None or MAC_FILTERED_NETWORK_TAG in net_tags
    mask = network_config.mac_filter_mask
    bridge = nic.link if nic.mode == "bridged" else None
    routed = None
    if nic.mode == "routed":
        if nic.ip is None and ipv6 is None:
            raise EnvVarError("IP", "a routed NIC needs an IPv4 address or an IPv6 /64 network")
        table = route_table(nic.link, rt_tables)
        routed = Routed(table=table, ipv4=nic.ip, ipv6=ipv6,
                        gateway=network.gateway if network else None,
                        mark=route_mark(table, network_config.routed_mark))
    unchecked = () if routed else None
    nic_filter = NicFilter(
        tap=nic.tap, mode=nic.mode, mac=nic.mac,
        # A bridged NIC without an address of a family (private networks: the user sets
        # it) is not checked for that family (None); its MAC always is. A routed NIC sends
        # nothing of a family it has no address of (()): the host has no route back, and
        # its packets would be routed through the link's table with any source.
        ipv4=(str(nic.ip),) if nic.ip else unchecked,
        ipv6=(str(ipv6), str(link_local(nic.mac))) if ipv6 else unchecked,
        profile=profile,
        mac_prefix=(masked_mac(nic.mac, mask), mask) if mac_filtered else None,
        bridge=bridge, route_mark=routed.mark if routed else None)
    wants_dhcp = any(tag in DHCP_NETWORK_TAGS for tag in net_tags)
    return NicPlan(
        tap=nic.tap, instance=nic.instance, mode=nic.mode, mac=nic.mac, bridge=bridge,
        private=private, routed=routed, filter=nic_filter,
        binding=binding_file(nic, ipv6, bridge or nic.tap) if wants_dhcp else None,
        ipv6=ipv6, link_local=link_local(nic.mac))


def route_table(name, rt_tables=pathutils.RT_TABLES):
    """A routing table's number from its name or number (iproute2's rt_tables)."""
    if name.isdigit():
        return int(name)
    paths = [rt_tables] + sorted(
        os.path.join(rt_tables + ".d", f) for f in pathutils.listdir(rt_tables + ".d") if f.endswith(".conf"))
    for path in paths:
        try:
            with open(path) as stream:
                for line in stream:
                    fields = line.split("#", 1)[0].split()
                    if len(fields) == 2 and fields[1] == name and fields[0].isdigit():
                        return int(fields[0])
        except FileNotFoundError:
            continue
    raise EnvVarError("LINK", f"{name!r} is neither a routing table number nor a name in {rt_tables}")


def route_mark(table, base):
    """The mark of packets from a routed NIC of ``table``: a policy rule per link, not per NIC."""
    if not 0 < table <= 0xFFFF:
        raise EnvVarError("LINK", f"routing table {table} is outside 1..65535, which "
                                  f"network.routed_mark leaves room for")
    return base | table


def firewall_profile(nic, profiles):
    """The profile the instance tags give this NIC; None (no filtering) without a tag."""
    name = firewall_profiles(nic.tags, [nic]).get(nic.index)
    if name is not None and name not in profiles:
        raise EnvVarError("TAGS", f"firewall profile {name!r} for NIC {nic.index} is not "
                                  f"defined (network.profiles has: {', '.join(profiles)})")
    return name


def private_bridge(nic, network_config):
    prefix = network_config.private_bridge_prefix
    rest = nic.link[len(prefix):] if prefix and nic.link.startswith(prefix) else ""
    if not rest.isdigit():
        return None
    return PrivateBridge(nic.link, network_config.private_transport,
                         int(rest) + network_config.private_id_offset)


def masked_mac(mac, mask):
    value = bytes(a & b for a, b in zip(bytes.fromhex(mac.replace(":", "")),
                                        bytes.fromhex(mask.replace(":", ""))))
    return ":".join(f"{b:02x}" for b in value)


def binding_file(nic, ipv6, indev):
    """The binding in nfdhcpd's format (networking spec §3.2)."""
    network = nic.network
    values = [("INDEV", indev), ("IP", nic.ip), ("MAC", nic.mac), ("HOSTNAME", nic.instance),
              ("TAGS", " ".join(nic.tags)), ("GATEWAY", network.gateway),
              ("SUBNET", network.subnet), ("GATEWAY6", network.gateway6),
              ("SUBNET6", network.subnet6), ("EUI64", ipv6)]
    return "".join(f"{key}={'' if value is None else value}\n" for key, value in values)
