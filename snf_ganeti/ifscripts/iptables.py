"""The legacy-iptables firewall backend, for hosts not yet on nftables.

Same interface and same guarantees as :mod:`snf_ganeti.ifscripts.nft`:
``setup(profiles)``, ``apply(tap, nic|None)``, ``listing()``, ``taps()``,
``teardown()``, all in the current network namespace. The ruleset, and how each
lookup avoids one rule per NIC, is described in
:mod:`snf_ganeti.ifscripts.iptables_render` (and its layer-2 changes in
:mod:`snf_ganeti.ifscripts.l2_render`).

Tools: python-iptables (``iptc``) for the IPv4/IPv6 rules. It drives libiptc,
i.e. always the *legacy* xtables tables, whatever ``update-alternatives`` says
``iptables`` is; one ``commit()`` replaces one table atomically. ``ipset``,
``ebtables-restore``/``ebtables-save`` and ``arptables`` run as commands (no
Python binding exists), each checked, each failure one line. Whichever
variant ``ebtables``/``arptables`` point to is used: kernels without
``CONFIG_BRIDGE_NF_EBTABLES_LEGACY`` (like the test machine's) need the nft one.

Atomicity: each iptables table is one commit, ebtables-nft changes one
transaction; the ipset elements and arptables commands of one apply are
ordered so that a tap is never less filtered than before while it changes.
Every change holds ``/run/xtables.lock``, the lock iptables itself takes, so
concurrent NIC scripts (and ``iptables -w``) never interleave.
"""

import contextlib
import fcntl
import importlib.util
import os
import re
import shutil
import subprocess
import sysconfig

from snf_ganeti.errors import HostError, one_line
from snf_ganeti.ifscripts import iftree, iproute
from snf_ganeti.ifscripts import iptables_render as r
from snf_ganeti.ifscripts import l2_render as l2
from snf_ganeti.ifscripts.iptc_rules import build_rule, rule_tap, rule_text
from snf_ganeti.ifscripts.nft import FirewallError

LOCK = "/run/xtables.lock"
TABLES = ("raw", "mangle", "filter")
COMMAND_TIMEOUT = 30


HINTS = ("XTABLES_LIBDIR", "PYTHON_IPTABLES_XTABLES_VERSION", "IPTABLES_LIBDIR")


def library_hints():
    """Where Debian keeps the C libraries python-iptables loads, as its documented variables
    (the extensions, libxtables' major version, directories searched first: the multiarch
    one and that of its own libxtwrapper); none where this is not Debian's layout. Left to
    find them, its import runs ``ldconfig -N -v`` (which reads every library directory),
    ``gcc`` and ``ld``: about 0.1 s of every NIC script on this backend."""
    multiarch = sysconfig.get_config_var("MULTIARCH")
    spec = importlib.util.find_spec("iptc")
    if not multiarch or spec is None or not spec.submodule_search_locations:
        return {}
    libdir = f"/usr/lib/{multiarch}"
    try:
        versions = [int(found.group(1)) for found in map(
            re.compile(r"libxtables\.so\.(\d+)").fullmatch, os.listdir(libdir)) if found]
    except OSError:
        return {}
    if not versions or not os.path.isdir(f"{libdir}/xtables"):
        return {}
    wrapper_dir = os.path.dirname(list(spec.submodule_search_locations)[0])
    return dict(zip(HINTS, (f"{libdir}/xtables", str(max(versions)), f"{libdir}:{wrapper_dir}")))


@contextlib.contextmanager
def hinted(environ):
    """``environ`` with the library hints while python-iptables is imported (it reads them
    then only), unless the operator set any of them; as it was afterwards, so the tools
    run later (ebtables-restore, ipset) do not inherit them."""
    hints = {} if any(name in environ for name in HINTS) else library_hints()
    environ.update(hints)
    try:
        yield
    finally:
        for name in hints:
            environ.pop(name, None)


class IptablesBackend:
    """snf-ganeti's firewall in legacy iptables + ipset + ebtables/arptables."""

    name = "iptables"

    def __init__(self, lock_path=LOCK):
        self._lock_path = lock_path
        self._iptc = None
        # Legacy arp_tables goes with legacy xtables, and each of its changes costs a
        # table swap (~1 ms) where arptables-nft pays an nftables commit (~4 ms).
        self._arptables = "arptables-legacy" if shutil.which("arptables-legacy") else "arptables"

    # --- the interface -------------------------------------------------------------------

    def setup(self, profiles):
        """Create or update the sets, chains and jumps; commits nothing when all is right."""
        try:
            sk = r.skeleton(profiles)
        except ValueError as err:
            raise FirewallError(f"iptables setup: {err}") from None
        with self._locked():
            saved = self._run(["ipset", "save"], "ipset")
            sets = r.parse_ipset_save(saved)
            self._ipset([r.create_set(name) for name in sk.sets if name not in sets]
                        + r.skbinfo_upgrade(saved), "setup")
            sets = self._sets()
            wanted_keys = {r.profile_key(name) for name in profiles}
            # A profile that left the configuration stays while taps still use it.
            in_use = {r.set_key(name) for name, members in sets.items()
                      if members and r.set_key(name) is not None} - wanted_keys
            versions = sets.get(r.VERSIONS, set())
            for (family, table), chains in sk.chains.items():
                if table == "filter":
                    try:
                        chains = {**chains, r.TO: r.to_rules(wanted_keys | in_use, family)}
                    except ValueError as err:
                        raise FirewallError(f"iptables setup: {err}") from None
                element = r.version_element(family, table, chains)
                if element in versions and self._has_chains(family, table, chains):
                    continue
                self._converge(family, table, chains, wanted_keys | in_use)
                stale = sorted(e for e in versions if r.is_version_of(e, family, table))
                self._ipset([f"add {r.VERSIONS} {element}"]
                            + [f"del {r.VERSIONS} {e}" for e in stale if e != element], "setup")
            obsolete = [name for name in sets if r.set_key(name) is not None
                        and r.set_key(name) not in wanted_keys | in_use]
            self._ipset([f"destroy {name}" for name in sorted(obsolete)], "setup")

    def apply(self, tap, nic):
        """Replace whatever is tied to ``tap`` with what ``nic`` needs (None: nothing)."""
        try:
            r.check_tap(tap)
            if nic is not None and nic.tap != tap:
                raise ValueError(f"the filter is for {nic.tap}")
            plan = r.nic_plan(nic) if nic is not None else None
        except ValueError as err:
            raise FirewallError(f"iptables {tap}: {err}") from None
        with self._locked():
            sets = self._sets()
            if plan is not None:
                self._check_set_up(sets, nic, plan)
            old = {(name, e) for name, members in sets.items() for e in members
                   if name != r.VERSIONS and r.element_tap(e)[0] == tap}
            new = plan.elements if plan else set()
            index = r.index_sets()
            # The index sets (membership) are added first and removed last: the tap is
            # checked during the whole change, and what it has is always found again.
            first = [f"add {s} {e}" for s, e in sorted(new - old) if s in index]
            changes = ([f"del {s} {r.element_key(e)}" for s, e in sorted(old - new)
                        if s not in index]
                       + [f"add {s} {e}" for s, e in sorted(new - old) if s not in index])
            last = [f"del {s} {r.element_key(e)}" for s, e in sorted(old - new) if s in index]
            if any(line.startswith("add") for line in changes) or first:
                self._ipset(first + changes, tap)
            else:
                last = changes + last
            # A routed tap is checked (and dispatched to its profile) once in its group.
            if plan is not None and plan.group is not None:
                self._set_group(tap, plan.group)
            routed = {s for s, _ in old | new} & {r.vm_set(f) for f in r.FAMILIES}
            bridged = r.br_set() in {s for s, _ in old | new}
            for family in r.FAMILIES:
                if routed:
                    self._apply_tap_rule(family, "raw", r.mac_chain(tap), tap,
                                         plan.mac_rules.get(family) if plan else None)
                if bridged:
                    self._apply_bridged_rule(family, tap,
                                             plan.bridged_rules.get(family) if plan else None)
            if bridged:
                self._restore("ebtables-restore",
                              l2.eb_apply_lines(self._l2("ebtables-save", "nat"), tap, plan), tap)
            if routed:
                for cmd in l2.arp_apply_commands(self._arp_state(), tap, plan):
                    self._arp(cmd, tap)
            if plan is None or plan.group is None:
                self._set_group(tap, 0, only_managed=True)
            self._ipset(last, tap)

    def listing(self):
        """Everything snf-ganeti owns as text (names without the ``snf-`` prefix)."""
        lines = []
        sets = self._sets()
        if sets:
            lines.append("ipset")
            for name in sorted(sets):
                lines += r.set_lines(name, sets[name])
        for family in r.FAMILIES:
            for table in TABLES:
                lines += self._table_lines(family, table)
        for title, state in (("bridge nat", self._l2("ebtables-save", "nat")),
                             ("arp filter", self._arp_state())):
            if state.chains or state.jumps:
                lines.append(f"table {title}")
                lines += _chain_lines(state.jumps, state.chains)
        return "".join(line + "\n" for line in lines)

    def taps(self):
        """The names of the taps that have anything in our sets, chains or rules."""
        names = {r.element_tap(e)[0] for name, members in self._sets().items()
                 if name != r.VERSIONS for e in members}
        for family in r.FAMILIES:
            for table_name in {t for t, _ in r.TAP_RULE_CHAINS}:
                table = self._table(family, table_name)
                wanted = {c for t, c in r.TAP_RULE_CHAINS if t == table_name}
                names.update(rule_tap(x) for chain in table.chains if chain.name in wanted
                             or iftree.is_node(r.BRIDGED, chain.name) for x in chain.rules)
        for state in (self._l2("ebtables-save", "nat"), self._arp_state()):
            names |= state.tap_chains()
            for chain, option in ((r.FROM, "-i"), (r.PRV, "-o")):
                names |= l2.l2_tree(state, chain, option).taps
        names.update(name for name, group in self._links().items() if r.is_managed_group(group))
        return {n for n in names if n is not None and not iftree.is_wildcard(n)}

    def teardown(self):
        """Remove everything snf-ganeti owns; the rest of every table stays as it was."""
        with self._locked():
            for family in r.FAMILIES:
                for name in TABLES:
                    table = self._table(family, name)
                    ours = [c for c in table.chains if r.is_ours(c.name)]
                    changed = self._drop_jumps(table)
                    for chain in ours:
                        chain.flush()
                    for chain in ours:
                        table.delete_chain(chain.name)
                    self._commit(table, changed or ours, f"iptables teardown ({family} {name})")
            self._ipset([f"destroy {name}" for name in sorted(self._sets())], "teardown")
            self._restore("ebtables-restore",
                          l2.eb_teardown_lines(self._l2("ebtables-save", "nat")), "teardown")
            for cmd in l2.arp_teardown_commands(self._arp_state()):
                self._arp(cmd, "teardown")
            for name, group in self._links().items():
                if r.is_managed_group(group):
                    self._set_group(name, 0, only_managed=True)

    # --- netdev groups (ip) -------------------------------------------------------------

    @staticmethod
    def _links():
        """{link name: netdev group} of the links in this namespace."""
        try:
            return {link["ifname"]: int(link["group"]) for link in
                    iproute.show("-Numeric", "link", "show")}
        except HostError as err:
            raise FirewallError(f"iptables: cannot list the links: {err}") from None

    @staticmethod
    def _set_group(tap, group, only_managed=False):
        """Put ``tap`` in netdev group ``group`` if it exists (a group goes with its
        link); with ``only_managed``, only if it is in one of our groups now."""
        try:
            found = iproute.link(tap, "-Numeric")
            if found is None:
                return
            current = int(found["group"])
            if current == group or (only_managed and not r.is_managed_group(current)):
                return
            # A tap gone meanwhile took its group with it.
            iproute.run("link", "set", "dev", tap, "group", str(group), ok=iproute.MISSING)
        except HostError as err:
            raise FirewallError(f"iptables {tap}: cannot set its netdev group: {err}") from None

    # --- iptables through python-iptables ------------------------------------------------

    def _module(self):
        if self._iptc is None:
            try:
                with hinted(os.environ):
                    import iptc
            except ImportError:
                raise FirewallError("iptables: python3-iptables is not installed") from None
            except Exception as err:  # libxtables/libiptc missing or unusable
                raise FirewallError(f"iptables: python-iptables unusable: {err}") from None
            self._iptc = iptc
        return self._iptc

    def _table(self, family, name):
        """The table as the kernel holds it now, changed only by an explicit commit."""
        iptc = self._module()
        try:
            table = (iptc.Table6 if family == "ip6" else iptc.Table)(name)
            table.autocommit = False
            table.refresh()
        except Exception as err:
            raise FirewallError(f"iptables: cannot read the {family} {name} table: "
                                f"{one_line(err)}") from None
        return table

    def _chain(self, table, name):
        return self._module().Chain(table, name)

    def _commit(self, table, changed, what):
        if not changed:
            return
        try:
            table.commit()
        except Exception as err:
            table.refresh()
            raise FirewallError(f"{what}: {one_line(err)}") from None
        finally:
            table.refresh()

    def build_rule(self, family, tokens):
        """A python-iptables rule from iptables-style tokens; ValueError if it cannot be."""
        return build_rule(self._module(), family, tokens)

    def _has_chains(self, family, table_name, chains):
        table = self._table(family, table_name)
        return all(table.is_chain(name) for name in [*chains, *(
            c for t, c in r.TAP_RULE_CHAINS if t == table_name)])

    def _converge(self, family, table_name, wanted, keys):
        table = self._table(family, table_name)
        changed = False
        existing = {c.name for c in table.chains}
        for name in (c for t, c in r.TAP_RULE_CHAINS if t == table_name and c not in existing):
            table.create_chain(name)
            changed = True
        for name in wanted:
            if name not in existing:
                table.create_chain(name)
                changed = True
        for name, rules in wanted.items():
            try:
                built = [self.build_rule(family, tokens) for tokens in rules]
            except ValueError as err:
                raise FirewallError(f"iptables setup: {err}") from None
            chain = self._chain(table, name)
            if [rule_text(x) for x in chain.rules] != [rule_text(x) for x in built]:
                chain.flush()
                for rule in built:
                    chain.append_rule(rule)
                changed = True
        for builtin, target in ((b, t) for t_name, b, t in r.JUMPS if t_name == table_name):
            jumps = [x for x in self._chain(table, builtin).rules
                     if x.target and x.target.name == target]
            if not jumps:
                self._chain(table, builtin).insert_rule(self.build_rule(family, ["-j", target]))
                changed = True
            for extra in jumps[1:]:
                self._chain(table, builtin).delete_rule(extra)
                changed = True
        keep = {r.PROFILE_CHAIN + key for key in keys}
        for chain in list(table.chains):
            if chain.name.startswith(r.PROFILE_CHAIN) and chain.name not in keep:
                chain.flush()
                table.delete_chain(chain.name)
                changed = True
        self._commit(table, changed, f"iptables setup ({family} {table_name})")

    def _apply_tap_rule(self, family, table_name, chain_name, tap, tokens):
        """Make ``tap``'s rule in one of the per-tap chains ``tokens`` (None: no rule)."""
        table = self._table(family, table_name)
        if not table.is_chain(chain_name):
            if tokens:
                raise FirewallError(f"iptables {tap}: the iptables firewall is not set up")
            return
        chain = self._chain(table, chain_name)
        old = [x for x in chain.rules if rule_tap(x) == tap]
        new = self.build_rule(family, tokens) if tokens else None
        if new is not None and [rule_text(x) for x in old] == [rule_text(new)]:
            return
        for rule in old:
            chain.delete_rule(rule)
        if new is not None:
            chain.append_rule(new)
        self._commit(table, True, f"iptables {tap} ({family})")

    def _apply_bridged_rule(self, family, tap, tokens):
        """Make ``tap``'s rule in snf-bridged's dispatch tree ``tokens`` (None: no rule)."""
        table = self._table(family, "filter")
        if not table.is_chain(r.BRIDGED):
            if tokens:
                raise FirewallError(f"iptables {tap}: the iptables firewall is not set up")
            return
        chains = {c.name: c for c in table.chains
                  if c.name == r.BRIDGED or iftree.is_node(r.BRIDGED, c.name)}
        tree = iftree.read(r.BRIDGED, chains, [
            (name, rule_tap(x), x.target.name if x.target else None, x)
            for name, chain in chains.items() for x in chain.rules])
        home = iftree.home(r.BRIDGED, tap)
        old = tree.of(tap)   # wherever they are (before the tree: in the base chain)
        new = self.build_rule(family, tokens) if tokens else None
        if new is not None and [(n, rule_text(x)) for n, x in old] == [(home, rule_text(new))]:
            return
        change = tree.change(tap, new is not None)
        for name, rule in old + [w for p in change.unwire for w in tree.wire_of(p)]:
            chains[name].delete_rule(rule)
        for prefix in change.delete:
            table.delete_chain(iftree.node(r.BRIDGED, prefix))
        for prefix in change.create:
            table.create_chain(iftree.node(r.BRIDGED, prefix))
        if new is not None:
            self._chain(table, home).append_rule(new)
        for prefix in change.wire:
            self._chain(table, iftree.parent(r.BRIDGED, prefix)).append_rule(
                self.build_rule(family, r.bridged_wire(prefix)))
        self._commit(table, True, f"iptables {tap} ({family})")

    def _drop_jumps(self, table):
        """Delete our jumps from the builtin chains (in the handle); whether there were any."""
        dropped = False
        for chain in table.chains:
            if chain.is_builtin():
                for rule in chain.rules:
                    if rule.target and r.is_ours(rule.target.name):
                        chain.delete_rule(rule)
                        dropped = True
        return dropped

    def _table_lines(self, family, name):
        table = self._table(family, name)
        jumps, chains = [], {}
        for chain in table.chains:
            if chain.is_builtin():
                jumps += [(chain.name, rule_text(x)) for x in chain.rules
                          if x.target and r.is_ours(x.target.name)]
            elif r.is_ours(chain.name):
                chains[chain.name] = [rule_text(x) for x in chain.rules]
        if not jumps and not chains:
            return []
        return [f"table {family} {name}"] + _chain_lines(jumps, chains)

    def _check_set_up(self, sets, nic, plan):
        if not all(name in sets for name in r.base_sets()):
            raise FirewallError(f"iptables {nic.tap}: the iptables firewall is not set up")
        if nic.profile is not None and r.to_set(nic.profile, "ip") not in sets:
            raise FirewallError(f"iptables {nic.tap}: firewall profile {nic.profile!r} "
                                f"is not set up")
        if plan.needs_br_netfilter:
            for version in ("", "6"):
                path = f"/proc/sys/net/bridge/bridge-nf-call-ip{version}tables"
                try:
                    with open(path) as stream:
                        on = stream.read().strip() == "1"
                except OSError:
                    on = False
                if not on:
                    raise FirewallError(
                        f"iptables {nic.tap}: a profile on a bridged NIC needs br_netfilter "
                        f"with net.bridge.bridge-nf-call-ip{version}tables=1")

    # --- commands ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        try:
            stream = open(self._lock_path, "a")
        except OSError as err:
            raise FirewallError(f"iptables: cannot open {self._lock_path}: "
                                f"{err.strerror}") from None
        with stream:
            fcntl.flock(stream, fcntl.LOCK_EX)
            yield

    def _run(self, argv, what, stdin=None):
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT)
        except FileNotFoundError:
            raise FirewallError(f"{what}: {argv[0]} is not installed") from None
        except subprocess.TimeoutExpired:
            raise FirewallError(f"{what}: {argv[0]} did not finish") from None
        if proc.returncode != 0:
            raise FirewallError(f"{what}: {' '.join(argv[:1] + argv[1:4])}: "
                                f"{one_line(proc.stderr or proc.stdout)}")
        return proc.stdout

    def _arp(self, cmd, what):
        self._run([self._arptables, *cmd], f"arptables {what}")

    def _arp_state(self):
        if self._arptables == "arptables-legacy":
            return l2.parse_arp_list(self._run([self._arptables, "-L", "-n"], "arptables"))
        return self._l2("arptables-save", "filter")

    def _sets(self):
        return r.parse_ipset_save(self._run(["ipset", "save"], "ipset"))

    def _ipset(self, lines, what):
        if lines:
            self._run(["ipset", "-exist", "restore"], f"ipset {what}",
                      "".join(line + "\n" for line in lines))

    def _l2(self, command, table):
        return l2.parse_save(self._run([command], command), table)

    def _restore(self, command, lines, what):
        if lines:
            self._run([command, "--noflush"], f"{command.split('-')[0]} {what}",
                      "".join(line + "\n" for line in lines))


def _chain_lines(jumps, chains):
    """Builtin chains (only our jumps in them) then our chains, as listing lines."""
    lines = []
    for builtin in sorted({chain for chain, _ in jumps}):
        lines.append(f"  chain {builtin} {{ hook {builtin.lower()} }}")
        lines += [f"    {r.show(rule)}" for chain, rule in jumps if chain == builtin]
    for name in sorted(chains):
        lines.append(f"  chain {r.show(name)}")
        lines += [f"    {r.show(rule)}" for rule in chains[name]]
    return lines
