"""The rules that send VMs' DHCP, DHCPv6, RS and NS packets to dhcpd's queues.

``plan`` gives the rules as data; ``render_nft`` and ``render_iptables`` write them for one
backend; ``Steering`` installs them at daemon start and removes them at exit.  Router and
neighbour solicitations are steered only from routed taps (the input device): on a bridge the
segment's router and neighbours answer them.  DHCP and DHCPv6 are steered from bridge ports
too (``bridged``, iptables' physdev match or nftables' bridge family).
"""

import logging
import subprocess
from dataclasses import dataclass

from snf_ganeti.errors import SteeringError, one_line

log = logging.getLogger(__name__)

TABLE = "snf_ganeti_dhcp"
CHAIN = "snf-ganeti-dhcp"
_MATCH = {  # what: (family, iptables match, nft match)
    "dhcp": ("ipv4", "-p udp --dport 67", "udp dport 67"),
    "rs": ("ipv6", "-p ipv6-icmp --icmpv6-type 133", "icmpv6 type nd-router-solicit"),
    "ns": ("ipv6", "-p ipv6-icmp --icmpv6-type 135", "icmpv6 type nd-neighbor-solicit"),
    "dhcpv6": ("ipv6", "-p udp --dport 547", "udp dport 547"),
}


@dataclass(frozen=True)
class SteeringRule:
    """One steering rule: packets of one kind (dhcp, rs, ns or dhcpv6) arriving on ``interface``
    (or, ``bridged``, on a bridge port of that name) go to NFQUEUE ``queue``."""

    what: str           # dhcp, rs, ns or dhcpv6
    interface: str      # iptables pattern: a trailing + is a wildcard
    queue: int
    bridged: bool       # the packet crosses a bridge: match the bridge port it came in on

    @property
    def family(self):
        return _MATCH[self.what][0]


def plan(config):
    """The rules for ``config`` (a DhcpConfig), in a stable order."""
    queues = {"dhcp": config.dhcp_queue, "rs": config.rs_queue, "ns": config.ns_queue,
              "dhcpv6": config.dhcpv6_queue}
    rules = []
    for what, queue in queues.items():
        if queue is None:
            continue
        for interface in config.interfaces:
            rules.append(SteeringRule(what, interface, queue, bridged=False))
            if what in ("dhcp", "dhcpv6"):
                rules.append(SteeringRule(what, interface, queue, bridged=True))
    return tuple(rules)


def render_iptables(rules, bypass):
    """{family: iptables-restore --noflush input} creating our chain in the mangle table."""
    texts = {}
    for family in ("ipv4", "ipv6"):
        lines = [f"-A {CHAIN} {_iptables_rule(rule, bypass)}" for rule in rules
                 if rule.family == family]
        if lines:
            texts[family] = "\n".join(["*mangle", f":{CHAIN} - [0:0]", *lines, "COMMIT", ""])
    return texts


def _iptables_rule(rule, bypass):
    where = f"-m physdev --physdev-in {rule.interface}" if rule.bridged else \
        f"-i {rule.interface}"
    target = f"-j NFQUEUE --queue-num {rule.queue}" + (" --queue-bypass" if bypass else "")
    return f"{where} {_MATCH[rule.what][1]} {target}"


def render_nft(rules, bypass):
    """An nft script that replaces our tables atomically (inet: routed, bridge: bridged)."""
    script = []
    for family, bridged, hook in (("inet", False, "priority mangle"),
                                  ("bridge", True, "priority -200")):
        body = [f"\t\tiifname \"{_nft_pattern(rule.interface)}\" {_MATCH[rule.what][2]} "
                f"queue num {rule.queue}{' bypass' if bypass else ''}"
                for rule in rules if rule.bridged == bridged]
        script += [f"table {family} {TABLE}", f"delete table {family} {TABLE}"]
        if body:
            script += [f"table {family} {TABLE} {{", "\tchain prerouting {",
                       f"\t\ttype filter hook prerouting {hook}; policy accept;", *body,
                       "\t}", "}"]
    return "\n".join(script) + "\n"


def _nft_pattern(interface):
    return interface[:-1] + "*" if interface.endswith("+") else interface


class Steering:
    """Install and remove the rules; ``backend`` is nftables or iptables (network config).

    Kernels without nftables' queue expression (nft_queue) get the same rules through
    iptables-nft, whose NFQUEUE target runs in nftables tables too.
    """

    def __init__(self, rules, bypass, backend, run=subprocess.run):
        self.rules, self.bypass, self.backend, self._run = rules, bypass, backend, run
        self.installed = None   # nftables, iptables-nft or iptables-legacy
        self._made_tables = []  # mangle tables iptables-nft created for us (it never deletes them)

    def install(self):
        if not self.rules:
            return None
        if self.backend == "nftables":
            try:
                self._nft(render_nft(self.rules, self.bypass))
                self.installed = "nftables"
                return self.installed
            except SteeringError as err:
                log.warning("%s; steering through iptables-nft instead", err)
            self._iptables("nft")
        else:
            self._iptables("legacy")
        return self.installed

    def remove(self):
        if self.installed == "nftables":
            self._nft("".join(f"table {family} {TABLE}\ndelete table {family} {TABLE}\n"
                              for family in ("inet", "bridge")))
        elif self.installed:
            variant = self.installed.split("-", 1)[1]
            for family in render_iptables(self.rules, self.bypass):
                tool = _tool(family, variant)
                self._call([tool, "-t", "mangle", "-D", "PREROUTING", "-j", CHAIN], check=False)
                self._call([tool, "-t", "mangle", "-F", CHAIN], check=False)
                self._call([tool, "-t", "mangle", "-X", CHAIN], check=False)
                if family in self._made_tables and _only_policies(
                        self._call([tool, "-t", "mangle", "-S"], check=False).stdout):
                    self._call(["nft", "delete", "table", _NFT_FAMILY[family], "mangle"],
                               check=False)
        self.installed = None
        self._made_tables = []

    def _nft(self, script):
        self._call(["nft", "-f", "-"], input=script)

    def _iptables(self, variant):
        self.installed = f"iptables-{variant}"
        texts = render_iptables(self.rules, self.bypass)
        if variant == "nft":
            self._made_tables = [family for family in texts if not self._has_table(family)]
        for family, text in texts.items():
            tool = _tool(family, variant)
            self._call([f"{tool}-restore", "--noflush"], input=text)
            jump = ["-t", "mangle", "-C", "PREROUTING", "-j", CHAIN]
            if self._call([tool, *jump], check=False).returncode != 0:
                jump[2] = "-I"
                self._call([tool, *jump])

    def _has_table(self, family):
        """Whether nftables holds the family's mangle table (if nft cannot tell: yes)."""
        try:
            found = self._call(["nft", "list", "table", _NFT_FAMILY[family], "mangle"],
                               check=False)
        except SteeringError:
            return True
        return found.returncode == 0

    def _call(self, argv, input=None, check=True):
        try:
            proc = self._run(argv, input=input, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise SteeringError(f"{argv[0]}: {err}") from None
        if check and proc.returncode != 0:
            detail = one_line(proc.stderr or proc.stdout or "", default="")
            raise SteeringError(f"{' '.join(argv[:2])} failed: {detail or proc.returncode}")
        return proc


_NFT_FAMILY = {"ipv4": "ip", "ipv6": "ip6"}


def _only_policies(saved):
    """Whether ``iptables -S`` shows nothing but builtin chains that accept everything."""
    lines = [line for line in saved.splitlines() if line.strip()]
    return all(line.startswith("-P ") and line.endswith(" ACCEPT") for line in lines)


def _tool(family, variant):
    return f"{'ip6tables' if family == 'ipv6' else 'iptables'}-{variant}"
