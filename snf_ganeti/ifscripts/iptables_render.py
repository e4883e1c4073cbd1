"""The legacy-iptables ruleset snf-ganeti owns, planned as plain data (no kernel here).

Every object carries the prefix ``snf-``; nothing else is ever touched. Layer 3
is xtables (python-iptables, i.e. libiptc: the *legacy* kernel tables) plus
ipset, layer 2 is ebtables (bridged NICs) and arptables (routed NICs):

- netdev groups: apply puts every managed routed tap in a group of
  ``GROUP_BASE/GROUP_MASK``: its bits 23..8 say the profile (0 without one,
  else ``profile_group(KEY)``, the profile key's digest), its bits 7..0 the
  tap's MAC-check bucket (a digest of its name). A group is a property of the
  link, so it vanishes with the tap;
- ``raw PREROUTING -> snf-from`` (IPv4 and IPv6, before conntrack): packets
  from routed taps. ``-m devgroup --src-group GROUP_BASE/GROUP_MASK`` says
  whether a packet comes from a managed tap at all, ``snf-src4/6``
  (hash:net,iface, ``ADDR,TAP``) whether its source is the tap's own: one
  group test and one hash lookup whatever the number of NICs. The MAC check
  (``-i TAP -m mac ! --mac-source``, one rule per tap: this kernel has no
  ipset type keyed by MAC) sits in one of 256 bucket chains ``snf-mac-HL``,
  reached through 16 + 16 group tests (``snf-mac-H``): a packet meets the
  rules of about 1/256 of the routed taps;
- ``mangle PREROUTING -> snf-mark``: a packet from a managed routed tap gets the
  routing mark of its link from its source's element in ``snf-src4/6``
  (``-j SET --map-mark``, which only the mangle table allows): one lookup;
- ``filter FORWARD -> snf-to``: traffic toward VMs. Routed: one rule per
  *profile* compares the output interface's group with the profile's
  (``-m devgroup --dst-group``) and jumps to ``snf-profile_<profile>``, so the cost grows with
  the number of profiles, not NICs. Bridged (br_netfilter): ``snf-bridged``'s tree
  (:mod:`~snf_ganeti.ifscripts.iftree`) holds one ``-m physdev --physdev-out TAP`` rule per
  tap with a profile, as ``-m set`` cannot look up the bridge port: ipset's
  ``physdev:TAP`` elements never match it (checked on kernel 6.18);
- index sets, matched by no rule, record what each tap has (so that a tap that
  is gone can still be cleaned up, and a profile in use is kept):
  ``snf-vm4/6`` (routed taps), ``snf-br4`` (bridged taps) and
  ``snf-to4/6-<profile>`` (who uses a profile). Their elements are
  ``index_net(TAP),TAP``: ipset does not hash the interface of a
  hash:net,iface element, so ``0/0,TAP`` elements of all taps would share one
  bucket (at most 64 of them: "Hash is full"); a net derived from the tap's
  name spreads them;
- ebtables ``nat PREROUTING -> snf-from``: ``-i TAP -j snf-from_TAP`` per
  bridged tap, in snf-from's tree (before the bridge learns the source MAC): source MAC, EtherType,
  ARP sender and IP source addresses; ``nat POSTROUTING -> snf-prv``:
  ``-o TAP -s ! PREFIX/MASK -j DROP`` per tap on a MAC-filtered private network, in
  snf-prv's tree;
- arptables ``filter INPUT -> snf-from``: ``-i TAP -j snf-from_TAP`` per routed tap, in
  snf-from's tree.

ebtables, arptables and physdev have no set keyed by interface and no verdict map, only
name prefixes (``tap1+``): their per-tap rules sit in a tree of name prefixes, where a
packet meets a few rules per character of its tap's name, not one rule per tap. How one
tap's layer-2 rules are added to or removed from those trees is :mod:`l2_render`'s part.
"""

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass, field

# The same validation as the nftables backend: the two must accept the same NICs.
from snf_ganeti.ifscripts import iftree
from snf_ganeti.ifscripts.nft_render import _mac as mac
from snf_ganeti.ifscripts.nft_render import check_tap

PREFIX = "snf-"
# The netdev groups of managed routed taps (see the module docstring).
GROUP_BASE, GROUP_MASK = 0x73000000, 0xFF000000
FAMILIES = ("ip", "ip6")
VERSION = {"ip": 4, "ip6": 6}
ANY = {"ip": "0.0.0.0/0", "ip6": "::/0"}
# chains in the iptables tables: (table, builtin chain, our chain it jumps to)
JUMPS = (("raw", "PREROUTING", "snf-from"), ("mangle", "PREROUTING", "snf-mark"),
         ("filter", "FORWARD", "snf-to"))
FROM, MAC_CHAIN, TO, BRIDGED = "snf-from", "snf-mac", "snf-to", "snf-bridged"
MARK = "snf-mark"
# A routed tap's group: GROUP_BASE | profile bits (23..8) | MAC-check bucket (7..0), and the
# bucket's chain is reached in two steps of at most 16 group tests (high nibble, low nibble).
PROFILE_MASK, BUCKETS = 0xFFFFFF00, 256


def mac_chain_of_bucket(bucket):
    return f"{MAC_CHAIN}-{bucket:02x}"


# chains setup creates but whose rules belong to taps: (table, chain)
TAP_RULE_CHAINS = tuple(("raw", mac_chain_of_bucket(b)) for b in range(BUCKETS)) + (
    ("filter", BRIDGED),)
PROFILE_CHAIN = "snf-profile_"
TAP_CHAIN = "snf-from_"
PRV = "snf-prv"
# ebtables (table nat) and arptables (table filter): builtin chain -> our dispatch chain
EB_JUMPS = (("PREROUTING", FROM), ("POSTROUTING", PRV))
ARP_JUMPS = (("INPUT", FROM),)
MULTIPORT_MAX = 15
# What an unconfigured IPv6 stack sends from :: (RFC 4862 DAD, RFC 4861 RS, RFC 3590 MLD).
UNSPECIFIED_SOURCE_ICMPV6 = (133, 135, 143)

# nft's ICMP type names (the profile model's spelling) as numbers both tools take
ICMP_TYPES = {
    "echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
    "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10,
    "time-exceeded": 11, "parameter-problem": 12, "timestamp-request": 13,
    "timestamp-reply": 14, "info-request": 15, "info-reply": 16,
    "address-mask-request": 17, "address-mask-reply": 18}
ICMPV6_TYPES = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
    "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
    "mld-listener-query": 130, "mld-listener-report": 131, "mld-listener-done": 132,
    "mld-listener-reduction": 132, "nd-router-solicit": 133, "nd-router-advert": 134,
    "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136, "nd-redirect": 137,
    "router-renumbering": 138, "ind-neighbor-solicit": 141, "ind-neighbor-advert": 142,
    "mld2-listener-report": 143}


# --- names --------------------------------------------------------------------------------

def is_ours(chain):
    """Whether a chain is this backend's: ``snf-ganeti-*`` chains belong to other parts
    (dhcpd steers DHCP through ``snf-ganeti-dhcp`` in the same mangle table)."""
    return chain.startswith(PREFIX) and not chain.startswith("snf-ganeti-")


def profile_key(name):
    """The profile's name as it fits in chain (28) and set (31) names; '.' marks a digest."""
    if len(name) <= 16:
        return name
    return f"{name[:7]}.{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def profile_chain(name):
    return PROFILE_CHAIN + profile_key(name)


def to_set(name, family):
    return to_set_of_key(profile_key(name), family)


def to_set_of_key(key, family):
    return f"{PREFIX}to{VERSION[family]}-{key}"


def set_key(name):
    """The profile key of a dispatch set (snf-to4-KEY), or None for the other sets."""
    found = _SET_RE.match(name)
    return name[found.end():] if found and name[len(PREFIX):].startswith("to") else None


def profile_group(key):
    """The profile bits (under PROFILE_MASK) of the groups of the routed taps of the profile
    with key ``key``."""
    bits = int(hashlib.sha256(key.encode()).hexdigest()[:4], 16)
    return GROUP_BASE | (bits or 1) << 8


def mac_bucket(tap):
    """Which of the BUCKETS chains holds the tap's MAC check: a digest of its name."""
    return hashlib.sha256(tap.encode()).digest()[0]


def mac_chain(tap):
    return mac_chain_of_bucket(mac_bucket(tap))


def nic_group(profile, tap):
    """The netdev group of a managed routed tap with ``profile`` (None: no profile)."""
    bits = GROUP_BASE if profile is None else profile_group(profile_key(profile))
    return bits | mac_bucket(tap)


def is_managed_group(group):
    return group is not None and group & GROUP_MASK == GROUP_BASE


def index_net(tap, family):
    """A host address derived from the tap's name: index elements hash apart."""
    digest = hashlib.sha256(tap.encode()).digest()
    if family == "ip6":
        return str(ipaddress.IPv6Address(int.from_bytes(digest[:16], "big") or 1))
    return str(ipaddress.IPv4Address(int.from_bytes(digest[:4], "big") or 1))


def index_element(tap, family, physdev=False):
    return f"{index_net(tap, family)},{'physdev:' if physdev else ''}{tap}"


def vm_set(family):
    return f"{PREFIX}vm{VERSION[family]}"


def src_set(family):
    return f"{PREFIX}src{VERSION[family]}"


def br_set():
    """Index of the bridged taps (``index_element``), matched by no rule: an apply reads
    ebtables only for taps in it or becoming bridged, arptables only for those in snf-vm4."""
    return f"{PREFIX}br4"


def index_sets():
    """The sets whose elements say a tap exists: added first, removed last."""
    return {vm_set("ip"), vm_set("ip6"), br_set()}


def base_sets():
    return [name(f) for name in (vm_set, src_set) for f in FAMILIES] + [br_set(), VERSIONS]


def version(family, table, chains):
    """Names one table's definition (its chains and their rules) in 15 characters."""
    text = json.dumps([family, table, sorted(chains.items())])
    return f"{VERSION[family]}{table[0]}{hashlib.sha256(text.encode()).hexdigest()[:13]}"


def version_element(family, table, chains):
    return f"{ANY['ip']},{version(family, table, chains)}"


def is_version_of(element, family, table):
    return element.split(",", 1)[1][:2] == f"{VERSION[family]}{table[0]}"


_SET_RE = re.compile(r"^" + re.escape(PREFIX) + r"(?:vm|src|to|br|ver)([46])(?:-|$)")
# Digests of the table definitions setup last wrote (as 0.0.0.0/0,DIGEST elements: an
# interface name holds 15 characters), so an unchanged setup reads no rule at all.
VERSIONS = f"{PREFIX}ver4"


def set_family(name):
    """'ip' or 'ip6' for one of our set names."""
    found = _SET_RE.match(name)
    if not found:
        raise ValueError(f"{name!r} is not one of our sets")
    return "ip6" if found.group(1) == "6" else "ip"


def create_set(name):
    family = "inet6" if set_family(name) == "ip6" else "inet"
    # Source sets carry each address's routing mark (skbinfo): one lookup marks a packet.
    extra = " skbinfo" if name in (src_set("ip"), src_set("ip6")) else ""
    return f"create {name} hash:net,iface family {family}{extra}"


def element_key(element):
    """An element without its extensions (``skbmark ...``), as ``ipset del`` wants it."""
    return element.split(" ", 1)[0]


def address(value, version):
    """An address, or a network with its prefix length; host routes without one."""
    try:
        net = ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise ValueError(f"bad IPv{version} address {value!r}") from None
    if net.version != version:
        raise ValueError(f"{value!r} is not an IPv{version} address")
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def icmp_type(name, family):
    table = ICMPV6_TYPES if family == "ip6" else ICMP_TYPES
    if str(name).isdigit() and int(name) < 256:
        return int(name)
    if name not in table:
        raise ValueError(f"unknown ICMP{'v6' if family == 'ip6' else ''} type {name!r}")
    return table[name]


# --- the skeleton (iptables and ipset) ----------------------------------------------------

def from_rules(family):
    """snf-from: only managed routed taps are checked, each against its own sources."""
    rules = [["-m", "devgroup", "!", "--src-group", f"{GROUP_BASE:#x}/{GROUP_MASK:#x}",
              "-j", "RETURN"],
             # the MAC check, in the tap's bucket chain (see mac_tree)
             *[["-m", "devgroup", "--src-group",
                f"{GROUP_BASE | h << 4:#x}/{GROUP_MASK | 0xF0:#x}", "-j", f"{MAC_CHAIN}-{h:x}"]
               for h in range(16)]]
    if family == "ip":
        # A DHCP client has no address yet; its DISCOVER/REQUEST go to the DHCP server.
        rules.append(["-s", "0.0.0.0/32", "-d", "255.255.255.255/32", "-p", "udp", "-m", "udp",
                      "--sport", "68", "--dport", "67", "-j", "RETURN"])
    else:
        rules += [["-s", "::/128", "-d", "ff02::/16", "-p", "ipv6-icmp", "-m", "icmp6",
                   "--icmpv6-type", str(t), "-j", "RETURN"] for t in UNSPECIFIED_SOURCE_ICMPV6]
    rules += [["-m", "set", "--match-set", src_set(family), "src,src", "-j", "RETURN"],
              ["-j", "DROP"]]
    return rules


def mark_rules(family):
    """snf-mark (mangle, only there can a set give the mark): a routed packet that passed
    snf-from gets its link's routing mark from its source's element in snf-src4/6."""
    return [["-m", "devgroup", "--src-group", f"{GROUP_BASE:#x}/{GROUP_MASK:#x}",
             "-j", "SET", "--map-set", src_set(family), "src,src", "--map-mark"]]


def mac_tree():
    """snf-mac-H (16 chains): the second step to the bucket chains snf-mac-HL, which hold
    one ``-i TAP -m mac ! --mac-source MAC -j DROP`` per tap: a packet meets at most 32
    group tests and its bucket's few taps, not one rule per routed tap on the node."""
    return {f"{MAC_CHAIN}-{h:x}": [
        ["-m", "devgroup", "--src-group", f"{GROUP_BASE | h << 4 | n:#x}/{GROUP_MASK | 0xFF:#x}",
         "-j", mac_chain_of_bucket(h << 4 | n)] for n in range(16)] for h in range(16)}


def to_rules(keys, family):
    """snf-to: bridged packets to snf-bridged, routed ones one group test per profile."""
    groups = {}
    for key in sorted(keys):
        if profile_group(key) in groups:
            raise ValueError(f"profiles {groups[profile_group(key)]!r} and {key!r} have the "
                             f"same netdev group; rename one")
        groups[profile_group(key)] = key
    return [["-m", "physdev", "--physdev-is-bridged", "-j", BRIDGED]] + [
        ["-m", "devgroup", "--dst-group", f"{group:#x}/{PROFILE_MASK:#x}",
         "-j", PROFILE_CHAIN + key]
        for group, key in sorted(groups.items(), key=lambda item: item[1])]


def profile_rules(profile, family):
    """The profile toward the VM for one IP version; stateless like the original."""
    rules = []
    for rule in profile.rules:
        if {"ip": "ipv4", "ip6": "ipv6"}[family] in rule.families:
            rules += [r + ["-j", "ACCEPT"] for r in _profile_rule(rule, family)]
    return rules + [["-j", profile.default.upper()]]


def _profile_rule(rule, family):
    if rule.proto in ("icmp", "icmpv6"):
        # ip6tables' "-p icmp" is protocol 1, never ICMPv6 (spec §2.9): ipv6-icmp it is.
        proto, match, option = (("ipv6-icmp", "icmp6", "--icmpv6-type") if family == "ip6"
                                else ("icmp", "icmp", "--icmp-type"))
        if not rule.icmp_types:
            return [["-p", proto]]
        return [["-p", proto, "-m", match, option, str(icmp_type(t, family))]
                for t in rule.icmp_types]
    rules = []
    for dports in _chunks(rule.dport):
        for sports in _chunks(rule.sport):
            tokens, own = ["-p", rule.proto], []
            for option, ports in (("dport", dports), ("sport", sports)):
                if len(ports) == 1:
                    own += [f"--{option}", str(ports[0])]
                elif ports:
                    tokens += ["-m", "multiport", f"--{option}s", ",".join(map(str, ports))]
            if rule.not_syn:
                # iptables' "! --syn": anything but a bare SYN, so replies (SYN-ACK) pass.
                own += ["!", "--syn"]
            if own:
                tokens += ["-m", rule.proto] + own
            rules.append(tokens)
    return rules


def _chunks(ports):
    ports = list(ports)
    return [ports[i:i + MULTIPORT_MAX] for i in range(0, len(ports), MULTIPORT_MAX)] or [[]]


@dataclass(frozen=True)
class Skeleton:
    """What setup owns in the iptables tables: {(family, table): {chain: rules}}."""

    chains: dict
    sets: tuple


def skeleton(profiles):
    chains = {}
    for family in FAMILIES:
        chains[(family, "raw")] = {FROM: from_rules(family), **mac_tree()}
        chains[(family, "mangle")] = {MARK: mark_rules(family)}
        filter_chains = {TO: to_rules([profile_key(n) for n in profiles], family)}
        for profile in profiles.values():
            filter_chains[profile_chain(profile.name)] = profile_rules(profile, family)
        chains[(family, "filter")] = filter_chains
    sets = base_sets() + [to_set(name, f) for name in profiles for f in FAMILIES]
    return Skeleton(chains, tuple(sets))


# --- one NIC ------------------------------------------------------------------------------

@dataclass
class NicPlan:
    """Everything one tap needs, in each tool."""

    tap: str
    elements: set = field(default_factory=set)     # {(set name, "net,iface")}
    mac_rules: dict = field(default_factory=dict)  # family -> rule tokens in snf-mac
    bridged_rules: dict = field(default_factory=dict)  # family -> rule tokens in snf-bridged
    eb_chain: list = field(default_factory=list)   # ebtables rule tokens of snf-from_TAP
    eb_prv: list = field(default_factory=list)     # ebtables rule tokens in snf-prv
    arp_chain: list = field(default_factory=list)  # arptables rule tokens of snf-from_TAP
    needs_br_netfilter: bool = False
    group: int = None    # the netdev group of a routed tap (None: bridged)


def nic_plan(nic):
    """The objects that enforce ``nic`` (a NicFilter); ValueError if it cannot be."""
    tap = check_tap(nic.tap)
    vm_mac = mac(nic.mac)
    ipv4 = [address(a, 4) for a in nic.ipv4]
    ipv6 = [address(a, 6) for a in nic.ipv6]
    plan = NicPlan(tap)
    if nic.mode == "routed":
        for family, addresses in (("ip", ipv4), ("ip6", ipv6)):
            plan.elements.add((vm_set(family), index_element(tap, family)))
            mark = f" skbmark {nic.route_mark:#x}" if nic.route_mark else ""
            plan.elements.update((src_set(family), f"{a},{tap}{mark}") for a in addresses)
            plan.mac_rules[family] = mac_rule(tap, vm_mac)
        plan.arp_chain = arp_from_vm(vm_mac, ipv4, nic.route_mark)
        plan.group = nic_group(nic.profile, tap)
        if nic.profile is not None:
            plan.elements.update((to_set(nic.profile, f), index_element(tap, f)) for f in FAMILIES)
    elif nic.mode == "bridged":
        plan.elements.add((br_set(), index_element(tap, "ip")))
        plan.eb_chain = bridged_from_vm(vm_mac, ipv4, ipv6)
        if nic.mac_prefix:
            prefix, mask = (mac(m) for m in nic.mac_prefix)
            plan.eb_prv = prv_rule(tap, prefix, mask)
        if nic.profile is not None:
            plan.needs_br_netfilter = True
            plan.bridged_rules = {f: bridged_rule(tap, nic.profile) for f in FAMILIES}
            # Never matched (-m set cannot see bridge ports): says who uses the profile.
            plan.elements.update((to_set(nic.profile, f), index_element(tap, f, physdev=True))
                                 for f in FAMILIES)
    else:
        raise ValueError(f"mode {nic.mode!r} has no firewall (bridged or routed)")
    return plan


def bridged_rule(tap, profile):
    return _physdev_out(tap, profile_chain(profile))


def bridged_wire(prefix):
    """snf-bridged's tree: the jump to ``prefix``'s node."""
    return _physdev_out(iftree.wildcard(prefix), iftree.node(BRIDGED, prefix))


def _physdev_out(iface, target):
    return ["-m", "physdev", "--physdev-out", iface, "--physdev-is-bridged", "-j", target]


def mac_rule(tap, vm_mac):
    return ["-i", tap, "-m", "mac", "!", "--mac-source", vm_mac, "-j", "DROP"]


def tap_chain(tap):
    return TAP_CHAIN + tap


def bridged_from_vm(vm_mac, ipv4, ipv6):
    """ebtables rules of snf-from_TAP: everything a bridged VM may send, then DROP."""
    rules = [["-s", "!", vm_mac, "-j", "DROP"]]
    if ipv4:
        rules.append(["-p", "ARP", "--arp-mac-src", "!", vm_mac, "-j", "DROP"])
        # 0.0.0.0: RFC 5227 address probes
        rules += [["-p", "ARP", "--arp-ip-src", a, "-j", "RETURN"] for a in ["0.0.0.0", *ipv4]]
        rules.append(["-p", "ARP", "-j", "DROP"])
        rules.append(["-p", "IPv4", "--ip-src", "0.0.0.0", "--ip-dst", "255.255.255.255",
                      "--ip-proto", "udp", "--ip-sport", "68", "--ip-dport", "67", "-j", "RETURN"])
        rules += [["-p", "IPv4", "--ip-src", a, "-j", "RETURN"] for a in ipv4]
    if ipv6:
        rules += [["-p", "IPv6", "--ip6-src", "::", "--ip6-dst", "ff02::/16", "--ip6-proto",
                   "ipv6-icmp", "--ip6-icmp-type", str(t), "-j", "RETURN"]
                  for t in UNSPECIFIED_SOURCE_ICMPV6]
        rules += [["-p", "IPv6", "--ip6-src", a, "-j", "RETURN"] for a in ipv6]
    # Anything else (802.1Q-tagged frames above all) carries addresses nobody looked at.
    return rules + [["-j", "DROP"]]


def prv_rule(tap, prefix, mask):
    return ["-o", tap, "-s", "!", f"{prefix}/{mask}", "-j", "DROP"]


def arp_from_vm(vm_mac, ipv4, route_mark=None):
    """arptables rules of snf-from_TAP for a routed VM (the node is the only one to fool).
    The link's mark lets proxy ARP find the gateway in the link's table."""
    if not ipv4:
        return [["-j", "DROP"]]
    marking = [["-j", "MARK", "--set-mark", f"{route_mark:#x}"]] if route_mark else []
    return ([["--source-mac", "!", vm_mac, "-j", "DROP"]] + marking
            + [["-s", a, "-j", "RETURN"] for a in ["0.0.0.0", *ipv4]] + [["-j", "DROP"]])


# --- reading what ipset prints -----------------------------------------------------------

def parse_ipset_save(text):
    """{set name: {elements}} of our sets in ``ipset save`` output."""
    sets = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith(PREFIX):
            if parts[0] == "create":
                sets.setdefault(parts[1], set())
            elif parts[0] == "add" and len(parts) >= 3:
                sets.setdefault(parts[1], set()).add(" ".join(parts[2:]))
    return sets


def skbinfo_upgrade(text):
    """``ipset restore`` lines that give ``skbinfo`` to source sets an older version made
    without it (``ipset save`` text in): a copy with it, swapped in; rules keep using them."""
    lines = []
    for name in (src_set("ip"), src_set("ip6")):
        create = [line.split() for line in text.splitlines()
                  if line.startswith(f"create {name} ")]
        if not create or "skbinfo" in create[0]:
            continue
        new = f"{name}-new"
        lines.append(create_set(name).replace(f" {name} ", f" {new} ", 1))
        lines += [f"add {new} {line.split(' ', 2)[2]}" for line in text.splitlines()
                  if line.startswith(f"add {name} ")]
        lines += [f"swap {new} {name}", f"destroy {new}"]
    return lines


def element_tap(element):
    """(tap, physdev?) of a hash:net,iface element."""
    iface = element_key(element).split(",", 1)[1]
    return (iface[len("physdev:"):], True) if iface.startswith("physdev:") else (iface, False)


# --- canonical text -----------------------------------------------------------------------

_MAC_TEXT = re.compile(r"\b[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}\b")
_OWN_NAME = re.compile(r"(?<![\w-])" + re.escape(PREFIX))


def show(text):
    """A rule or name as listings show it: MACs in lower case, without our prefix."""
    return _OWN_NAME.sub("", _MAC_TEXT.sub(lambda m: m.group(0).lower(), text))


def set_lines(name, elements):
    """A set as listing lines; dispatch sets say which chain their members reach."""
    lines = [f"  set {show(name)} hash:net,iface"]
    key = set_key(name)
    target = show(PROFILE_CHAIN + key) if key is not None else None
    if name == VERSIONS:
        return lines + [f"    {element.split(',', 1)[1]}" for element in sorted(elements)]
    for element in sorted(elements):
        net, rest = element.split(",", 1)
        tap, physdev = element_tap(element)
        text = f'    "{tap}"' + (" physdev" if physdev else "")
        if target:
            text += f" : jump {target}"
        elif name not in index_sets():
            text += f" {net}" + (f" mark {rest.split()[-1]}" if " skbmark " in rest else "")
        lines.append(text)
    return lines
