"""Firewall profiles and the per-NIC filtering plan, as plain data.

A profile (``protected``, ``limited``, ``unprotected`` (see default_profiles) or an
operator's own, from config key ``network.profiles``) filters traffic *toward* the VM: it is
an ordered list of accept rules and a default verdict. Backends
(``nftables``, ``iptables``) turn a :class:`NicFilter` into rules; the plan
never says how.
"""

from dataclasses import dataclass

PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6")
VERDICTS = ("accept", "drop")


@dataclass(frozen=True)
class Rule:
    """Accept traffic toward the VM that matches all the given fields."""

    proto: str
    dport: tuple = ()
    sport: tuple = ()
    not_syn: bool = False       # TCP segments that do not open a connection (replies)
    icmp_types: tuple = ()      # names as nft spells them; empty: every type

    @property
    def families(self):
        return {"icmp": ("ipv4",), "icmpv6": ("ipv6",)}.get(self.proto, ("ipv4", "ipv6"))


@dataclass(frozen=True)
class Profile:
    """A firewall profile: ordered accept rules for traffic toward the VM, and a default verdict."""

    name: str
    description: str
    default: str
    rules: tuple


@dataclass(frozen=True)
class NicFilter:
    """Everything the firewall enforces for one tap."""

    tap: str
    mode: str                   # "bridged" or "routed"
    mac: str                    # the only source MAC the VM may use
    ipv4: tuple | None          # the only IPv4 sources; (): no IPv4 at all; None: unchecked
    ipv6: tuple | None          # the only IPv6 sources (global EUI-64 and link-local); idem
    profile: str | None         # None: no filtering toward the VM
    mac_prefix: tuple | None = None   # (prefix, mask): only frames from it reach the VM
    bridge: str | None = None
    route_mark: int | None = None     # routed: the mark that selects the link's table


def parse_profiles(raw):
    """{name: Profile} from config data; ValueError naming the bad part."""
    if not isinstance(raw, dict) or not raw:
        raise ValueError("must map profile names to profiles")
    profiles = {}
    for name, spec in raw.items():
        where = f"[{name}]"
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"{where}: profile names are letters, digits, - and _")
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: must be a mapping")
        unknown = set(spec) - {"description", "default", "rules"}
        if unknown:
            raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        default = spec.get("default", "drop")
        if default not in VERDICTS:
            raise ValueError(f"{where}.default: must be accept or drop")
        rules = spec.get("rules", [])
        if not isinstance(rules, list):
            raise ValueError(f"{where}.rules: must be a list")
        profiles[name] = Profile(name, str(spec.get("description", "")), default,
                                 tuple(_rule(r, f"{where}.rules[{i}]") for i, r in enumerate(rules)))
    return profiles


def _rule(raw, where):
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping")
    unknown = set(raw) - {"proto", "dport", "sport", "not_syn", "icmp_types"}
    if unknown:
        raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    proto = raw.get("proto")
    if proto not in PROTOCOLS:
        raise ValueError(f"{where}.proto: must be one of {', '.join(PROTOCOLS)}")
    ports = {}
    for key in ("dport", "sport"):
        value = raw.get(key, [])
        value = [value] if isinstance(value, int) else value
        if not isinstance(value, list) or not all(
                isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in value):
            raise ValueError(f"{where}.{key}: must be a port or a list of ports (1-65535)")
        if value and proto not in ("tcp", "udp"):
            raise ValueError(f"{where}.{key}: ports need proto tcp or udp")
        ports[key] = tuple(value)
    not_syn = raw.get("not_syn", False)
    if not isinstance(not_syn, bool) or (not_syn and proto != "tcp"):
        raise ValueError(f"{where}.not_syn: true or false, with proto tcp")
    types = raw.get("icmp_types", [])
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types) or \
            (types and proto not in ("icmp", "icmpv6")):
        raise ValueError(f"{where}.icmp_types: a list of ICMP type names, with proto icmp/icmpv6")
    return Rule(proto, ports["dport"], ports["sport"], not_syn, tuple(types))


def check_profiles(raw):
    """Config check: a problem string or None."""
    try:
        parse_profiles(raw)
    except ValueError as err:
        return str(err)
    return None
