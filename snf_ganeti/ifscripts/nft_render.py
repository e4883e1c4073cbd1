"""The nftables ruleset snf-ganeti owns, planned as libnftables JSON (no kernel here).

Three tables named ``snf_ganeti``:

- ``bridge``: bridged NICs at layer 2 (no br_netfilter needed). ``prerouting``
  dispatches frames *from* a VM to its anti-spoofing chain ``from_<tap>``,
  ``forward`` dispatches frames *toward* a VM to its profile chain, and
  ``postrouting`` to ``prv_<tap>``, the MAC-prefix filter of private networks;
- ``inet``: routed NICs. ``prerouting`` (before conntrack) dispatches to
  ``from_<tap>``, which ends by setting the link's routing mark, ``forward``
  to the profile chain;
- ``arp``: routed NICs' ARP (the inet family never sees it), ``input`` to ``from_<tap>``.

Every dispatch is one verdict-map lookup keyed by interface name, so the
per-packet cost does not grow with the number of NICs, and a NIC's objects are
found and removed by its name alone, whether or not the tap still exists.
"""

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass, field

TABLE = "snf_ganeti"
FAMILIES = ("arp", "bridge", "inet")
PROFILE_FAMILIES = ("bridge", "inet")
PROFILE_PREFIX = "profile_"
TAP_CHAIN_PREFIXES = ("from_", "prv_")
# Set of the versions (digests) of the chains setup wrote: checking that they are current
# then reads one small set instead of every rule of every tap.
VERSIONS = "versions"
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_TAP_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
# What an unconfigured IPv6 stack sends from :: (RFC 4862 DAD, RFC 4861 RS, RFC 3590 MLD).
UNSPECIFIED_SOURCE_ICMPV6 = ["nd-router-solicit", "nd-neighbor-solicit", "mld2-listener-report"]


@dataclass(frozen=True)
class Chain:
    """One chain of the ``snf_ganeti`` table of ``family``; a base chain when it has a hook."""

    family: str
    name: str
    rules: tuple = ()        # each rule a list of libnftables JSON expressions
    hook: str | None = None  # base chains only
    prio: int = 0

    def spec(self):
        """The chain's kernel attributes as `list` reports them (base chains only)."""
        if self.hook is None:
            return {}
        return {"type": "filter", "hook": self.hook, "prio": self.prio, "policy": "accept"}


@dataclass(frozen=True)
class Element:
    """One verdict-map element: packets whose interface is ``key`` jump to chain ``target``."""

    family: str
    map: str
    key: str
    target: str              # the chain the verdict jumps to


@dataclass(frozen=True)
class NicObjects:
    """What the ruleset holds for one NIC alone: its chains and its verdict-map elements."""

    chains: tuple = ()
    elements: tuple = ()


@dataclass
class State:
    """What snf-ganeti's tables hold now, from libnftables' JSON listing."""

    tables: set = field(default_factory=set)
    maps: dict = field(default_factory=dict)     # sets too: (family, name) -> {"elems": [..], ..}
    chains: dict = field(default_factory=dict)   # (family, name) -> {"spec": .., "rules": [..]}


# --- JSON expression helpers -------------------------------------------------------------

def payload(protocol, name):
    return {"payload": {"protocol": protocol, "field": name}}


def meta(key):
    return {"meta": {"key": key}}


def match(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def values(items):
    """One value as itself, several as an anonymous set (nft lists them the same way)."""
    items = list(items)
    return items[0] if len(items) == 1 else {"set": items}


def jump(target):
    return {"jump": {"target": target}}


ACCEPT, DROP, RETURN = {"accept": None}, {"drop": None}, {"return": None}


def _obj(kind, family, **attrs):
    return {kind: {"family": family, "table": TABLE, **attrs}}


# --- the skeleton ------------------------------------------------------------------------

# (family, chain, hook, priority, dispatch key, verdict map)
_BASE_CHAINS = (
    ("arp", "input", "input", 0, "iifname", "from_vm"),
    ("bridge", "prerouting", "prerouting", -200, "iifname", "from_vm"),
    ("bridge", "forward", "forward", -200, "oifname", "to_vm"),
    ("bridge", "postrouting", "postrouting", -200, "oifname", "to_prv"),
    # raw priority: spoofed packets are dropped before conntrack keeps state for them
    ("inet", "prerouting", "prerouting", -300, "iifname", "from_vm"),
    ("inet", "forward", "forward", 0, "oifname", "to_vm"),
)


def skeleton(profiles):
    """The chains setup owns: the base chains, and each profile in each family that needs it."""
    chains = [Chain(family, name, ([{"vmap": {"key": meta(key), "data": f"@{vmap}"}}],),
                    hook, prio)
              for family, name, hook, prio, key, vmap in _BASE_CHAINS]
    chains += [Chain(family, profile_chain(p.name), profile_rules(p, family))
               for p in profiles.values() for family in PROFILE_FAMILIES]
    return tuple(chains)


def profile_chain(name):
    return PROFILE_PREFIX + name


def profile_rules(profile, family):
    """The profile as rules toward the VM; both IP versions in one chain."""
    rules = []
    if family == "bridge" and profile.default == "drop":
        # Profiles speak of IP; ARP is how the VM's neighbours find it at all.
        rules.append([match(payload("ether", "type"), "arp"), ACCEPT])
    rules += [_profile_rule(rule, family) + [ACCEPT] for rule in profile.rules]
    rules.append([{profile.default: None}])
    return tuple(rules)


def _profile_rule(rule, family):
    exprs = []
    if rule.families != ("ipv4", "ipv6"):
        exprs.append(_only(rule.families[0], family))
    header = "icmpv6" if rule.proto == "icmpv6" else rule.proto
    # icmpv6 is next-header 58 ("ipv6-icmp"): ip6tables' "-p icmp" never matched it (spec §2.9).
    exprs.append(match(meta("l4proto"), "ipv6-icmp" if rule.proto == "icmpv6" else rule.proto))
    for name, ports in (("dport", rule.dport), ("sport", rule.sport)):
        if ports:
            exprs.append(match(payload(header, name), values(ports)))
    if rule.not_syn:
        # iptables' "! --syn": anything but a bare SYN, so replies (SYN-ACK included) pass.
        flags = {"&": [payload("tcp", "flags"), ["fin", "syn", "rst", "ack"]]}
        exprs.append(match(flags, "syn", "!="))
    if rule.icmp_types:
        exprs.append(match(payload(header, "type"), values(rule.icmp_types)))
    return exprs


def _only(version, family):
    """Restrict a rule to IPv4 or IPv6 packets."""
    if family == "inet":
        return match(meta("nfproto"), version)
    return match(payload("ether", "type"), {"ipv4": "ip", "ipv6": "ip6"}[version])


def version(chain):
    """Names the chain's definition, so setup rewrites only chains whose config changed."""
    text = json.dumps([chain.family, chain.name, chain.spec(), chain.rules], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:15]   # an ifname holds 15 characters


def known_sets():
    """(family, name, kind) of every set and map setup creates."""
    return ([(f, name, "map") for f, name in sorted({(f, m) for f, *_, m in _BASE_CHAINS})]
            + [(f, VERSIONS, "set") for f in FAMILIES])


# --- one NIC -----------------------------------------------------------------------------

def check_tap(tap):
    if not isinstance(tap, str) or not _TAP_RE.fullmatch(tap):
        raise ValueError(f"bad tap name {tap!r}: 1 to 15 of A-Z a-z 0-9 _ . -")
    return tap


def nic_objects(nic):
    """The chains and map elements that enforce ``nic`` (a NicFilter)."""
    tap = check_tap(nic.tap)
    mac = _mac(nic.mac)
    ipv4 = None if nic.ipv4 is None else tuple(_address(a, 4) for a in nic.ipv4)
    ipv6 = None if nic.ipv6 is None else tuple(_address(a, 6) for a in nic.ipv6)
    if nic.mode == "bridged":
        chains = [Chain("bridge", f"from_{tap}", bridged_from_vm(mac, ipv4, ipv6))]
        if nic.mac_prefix:
            prefix, mask = (_mac(m) for m in nic.mac_prefix)
            chains.append(Chain("bridge", f"prv_{tap}", (
                [match({"&": [payload("ether", "saddr"), mask]}, prefix, "!="), DROP],)))
        families = ("bridge",)
    elif nic.mode == "routed":
        # Every frame toward a routed VM comes from the host, so a MAC prefix filters nothing.
        chains = [Chain("inet", f"from_{tap}", routed_from_vm(mac, ipv4, ipv6, nic.route_mark)),
                  Chain("arp", f"from_{tap}", arp_from_vm(mac, ipv4, nic.route_mark))]
        families = ("inet",)
    else:
        raise ValueError(f"mode {nic.mode!r} has no firewall (bridged or routed)")
    elements = [Element(c.family, "from_vm" if c.name.startswith("from_") else "to_prv", tap,
                        c.name) for c in chains]
    if nic.profile is not None:
        elements += [Element(f, "to_vm", tap, profile_chain(nic.profile)) for f in families]
    return NicObjects(tuple(chains), tuple(elements))


def bridged_from_vm(mac, ipv4, ipv6):
    # None: addresses unchecked (a NIC without one, e.g. on a private network); (): none allowed.
    allowed = (["arp", "ip"] if ipv4 != () else []) + (["ip6"] if ipv6 != () else [])
    rules = [[match(payload("ether", "saddr"), mac, "!="), DROP]]
    # Only the protocols checked below: anything else (802.1Q-tagged frames above all)
    # would carry addresses nobody looked at.
    rules.append([match(payload("ether", "type"), values(allowed), "!="), DROP]
                 if allowed else [DROP])
    if ipv4:
        rules.append([match(payload("arp", "saddr ether"), mac, "!="), DROP])
        rules.append([match(payload("arp", "saddr ip"), values(["0.0.0.0", *ipv4]), "!="), DROP])
    return tuple(rules + _ip_sources(ipv4, ipv6, "bridge"))


def routed_from_vm(mac, ipv4, ipv6, route_mark=None):
    # What passed gets its link's routing mark: one policy rule per link selects the table.
    return tuple([[match(payload("ether", "saddr"), mac, "!="), DROP]]
                 + _ip_sources(ipv4, ipv6, "inet") + _marking(route_mark))


def _marking(route_mark):
    return [[{"mangle": {"key": meta("mark"), "value": route_mark}}]] if route_mark else []


def arp_from_vm(mac, ipv4, route_mark=None):
    if ipv4 == ():
        return ([DROP],)
    rules = [[match(payload("arp", "saddr ether"), mac, "!="), DROP]]
    if ipv4 is not None:
        # 0.0.0.0: RFC 5227 address probes
        rules.append([match(payload("arp", "saddr ip"), values(["0.0.0.0", *ipv4]), "!="), DROP])
    # Proxy ARP looks the target up with this mark: the link's table has the gateway.
    return tuple(rules + _marking(route_mark))


def _ip_sources(ipv4, ipv6, family):
    rules = []
    if ipv4:
        # A DHCP client has no address yet; its DISCOVER/REQUEST go to the DHCP server.
        rules.append([match(payload("ip", "saddr"), "0.0.0.0"),
                      match(payload("ip", "daddr"), "255.255.255.255"),
                      match(payload("udp", "sport"), 68), match(payload("udp", "dport"), 67),
                      RETURN])
        rules.append([match(payload("ip", "saddr"), values(ipv4), "!="), DROP])
    elif family == "inet" and ipv4 is not None:
        rules.append([_only("ipv4", family), DROP])
    if ipv6:
        rules.append([match(payload("ip6", "saddr"), "::"),
                      match(payload("ip6", "daddr"), {"prefix": {"addr": "ff02::", "len": 16}}),
                      match(payload("icmpv6", "type"), values(UNSPECIFIED_SOURCE_ICMPV6)),
                      RETURN])
        rules.append([match(payload("ip6", "saddr"), values(ipv6), "!="), DROP])
    elif family == "inet" and ipv6 is not None:
        rules.append([_only("ipv6", family), DROP])
    return rules


def _mac(mac):
    mac = str(mac).lower()
    if not _MAC_RE.fullmatch(mac):
        raise ValueError(f"bad MAC address {mac!r}")
    return mac


def _address(value, version):
    """An address, or a network written with a prefix length."""
    net = ipaddress.ip_network(str(value), strict=False)
    if net.version != version:
        raise ValueError(f"{value!r} is not an IPv{version} address")
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


# --- JSON commands -----------------------------------------------------------------------

def add_table(family):
    return {"add": {"table": {"family": family, "name": TABLE}}}


def add_set(family, name, kind):
    """A verdict map keyed by interface name, or (kind "set") a set of short strings."""
    extra = {"map": "verdict"} if kind == "map" else {}
    return {"add": _obj(kind, family, name=name, type="ifname", **extra)}


def chain_commands(chain):
    """Create the chain with its rules."""
    return ([{"add": _obj("chain", chain.family, name=chain.name, **chain.spec())}]
            + [{"add": _obj("rule", chain.family, chain=chain.name, expr=rule)}
               for rule in chain.rules])


def replace_chain(chain):
    """The chain with exactly its rules, whether it exists or not (adding a chain is idempotent)."""
    add, *rules = chain_commands(chain)
    return [add, {"flush": _obj("chain", chain.family, name=chain.name)}, *rules]


def delete_chain(family, name):
    # Flushed first: nft(8) wants a chain empty before deleting it (newer kernels do not insist).
    chain = _obj("chain", family, name=name)
    return [{"flush": chain}, {"delete": chain}]


def add_element(element):
    return {"add": _obj("element", element.family, name=element.map,
                        elem=[[element.key, jump(element.target)]])}


def set_elements(verb, family, name, keys):
    return {verb: _obj("element", family, name=name, elem=list(keys))}


# --- what to change -----------------------------------------------------------------------

def jump_targets(state):
    """Every chain some rule or map element jumps to, as (family, name)."""
    targets = set()

    def walk(family, node):
        if isinstance(node, dict):
            for verb in ("jump", "goto"):
                if isinstance(node.get(verb), dict):
                    targets.add((family, node[verb]["target"]))
            for child in node.values():
                walk(family, child)
        elif isinstance(node, list):
            for child in node:
                walk(family, child)

    for (family, _), content in state.maps.items():
        walk(family, [value for _, value in content["elems"]])
    for (family, _), chain in state.chains.items():
        walk(family, [rule["expr"] for rule in chain["rules"]])
    return targets


def keys(state, family, name):
    """The keys of one of our sets or maps (empty if it does not exist)."""
    return {key for key, _ in state.maps.get((family, name), {"elems": []})["elems"]}


def setup_commands(state, profiles):
    """Commands that make the tables, maps, base and profile chains what ``profiles`` need.

    Nothing is emitted for what is already right, so an unchanged setup
    commits nothing. A profile chain that left the configuration is deleted
    once no tap jumps to it; until then the taps keep the rules they got.
    """
    chains = skeleton(profiles)
    cmds = [add_table(family) for family in FAMILIES if family not in state.tables]
    cmds += [add_set(family, name, kind) for family, name, kind in known_sets()
             if (family, name) not in state.maps]
    for chain in chains:
        cmds += _converge(state, chain)
    for family in FAMILIES:
        have = keys(state, family, VERSIONS)
        want = {version(c) for c in chains if c.family == family}
        if have - want:
            cmds.append(set_elements("delete", family, VERSIONS, sorted(have - want)))
        if want - have:
            cmds.append(set_elements("add", family, VERSIONS, sorted(want - have)))
    wanted = {(c.family, c.name) for c in chains}
    in_use = jump_targets(state)
    for family, name in sorted(state.chains):
        if name.startswith(PROFILE_PREFIX) and (family, name) not in wanted | in_use:
            cmds += delete_chain(family, name)
    return cmds


def _converge(state, chain):
    have = state.chains.get((chain.family, chain.name))
    if have is not None and have["spec"] != chain.spec():  # a base chain with other hooks
        return delete_chain(chain.family, chain.name) + chain_commands(chain)
    if have is None or version(chain) not in keys(state, chain.family, VERSIONS):
        return replace_chain(chain)
    return []


def tap_objects(state, tap):
    """(chains, elements) tied to ``tap``: exactly those named by it."""
    names = {prefix + tap for prefix in TAP_CHAIN_PREFIXES}
    chains = sorted(key for key in state.chains if key[1] in names)
    elements = sorted((family, name) for family, name in state.maps
                      if name != VERSIONS and tap in keys(state, family, name))
    return chains, elements


def apply_commands(state, tap, nic):
    """Commands that remove everything tied to ``tap`` and install ``nic`` (if not None).

    ValueError if ``nic`` cannot be enforced (bad addresses, not set up).
    """
    check_tap(tap)
    if nic is not None and nic.tap != tap:
        raise ValueError(f"the filter is for {nic.tap}")
    new = nic_objects(nic) if nic is not None else NicObjects()
    _check_set_up(state, new)
    old_chains, old_elements = tap_objects(state, tap)
    # Order matters inside the transaction: a chain can go only once nothing jumps to it.
    cmds = [set_elements("delete", family, vmap, [tap]) for family, vmap in old_elements]
    for chain in new.chains:
        cmds += replace_chain(chain)
    kept = {(c.family, c.name) for c in new.chains}
    for family, name in old_chains:
        if (family, name) not in kept:
            cmds += delete_chain(family, name)
    return cmds + [add_element(element) for element in new.elements]


def _check_set_up(state, new):
    for element in new.elements:
        if (element.family, element.map) not in state.maps:
            raise ValueError(f"the {element.family} table {TABLE} is not set up")
        if (element.target.startswith(PROFILE_PREFIX)
                and (element.family, element.target) not in state.chains):
            name = element.target[len(PROFILE_PREFIX):]
            raise ValueError(f"firewall profile {name!r} is not set up")
