"""The layer-2 half of the legacy ruleset: ebtables (bridged NICs) and arptables (routed
NICs), read from what their tools print and changed one tap at a time, as plain data.

What a tap's chain holds comes from :func:`iptables_render.nic_plan`; here it is hung in the
dispatch trees (:mod:`~snf_ganeti.ifscripts.iftree`) of ``snf-from`` and ``snf-prv``, as
``ebtables-restore`` lines (one transaction) or, for arptables, as single commands in an order
that never lets a tap's ARP through unchecked.
"""

from dataclasses import dataclass, field

from snf_ganeti.ifscripts import iftree
from snf_ganeti.ifscripts.iptables_render import (
    ARP_JUMPS, EB_JUMPS, FROM, PREFIX, PRV, TAP_CHAIN, tap_chain)

# --- reading what the tools print ---------------------------------------------------------

@dataclass
class L2State:
    """Our chains in one ebtables/arptables table: {chain: [rule text]} and our jumps."""

    chains: dict = field(default_factory=dict)
    jumps: list = field(default_factory=list)   # (builtin chain, rule text)

    def tap_chains(self):
        return {name[len(TAP_CHAIN):] for name in self.chains if name.startswith(TAP_CHAIN)}


def parse_save(text, table):
    """Our part of ``ebtables-save``/``arptables-save`` output for ``table``."""
    state, current = L2State(), None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = line[1:]
            continue
        if current != table:
            continue
        if line.startswith(":"):
            name = line[1:].split()[0]
            if name.startswith(PREFIX):
                state.chains.setdefault(name, [])
        elif line.startswith("-A "):
            _, chain, rest = line.split(" ", 2)
            if chain.startswith(PREFIX):
                state.chains.setdefault(chain, []).append(rest)
            elif _jump_target(rest).startswith(PREFIX):
                state.jumps.append((chain, rest))
    return state


def parse_arp_list(text):
    """Our part of ``arptables-legacy -L -n`` (its -save script reads the nft variant)."""
    state, chain, builtin = L2State(), None, False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Chain "):
            chain = line.split()[1]
            builtin = "(policy" in line
            if chain.startswith(PREFIX):
                state.chains.setdefault(chain, [])
        elif line and chain:
            if chain.startswith(PREFIX):
                state.chains[chain].append(line)
            elif builtin and _jump_target(line).startswith(PREFIX):
                state.jumps.append((chain, line))
    return state

def _jump_target(rule_text):
    tokens = rule_text.split()
    for i, token in enumerate(tokens[:-1]):
        if token == "-j":
            return tokens[i + 1]
    return ""


def rule_iface(rule_text, option):
    """The interface a rule text names with ``option`` (-i or -o), or None."""
    tokens = rule_text.split()
    for i, token in enumerate(tokens[:-1]):
        if token == option:
            return tokens[i + 1]
    return None


# --- one tap's change ---------------------------------------------------------------------

@dataclass(frozen=True)
class TreeLines:
    """One tap's change to one dispatch tree, as ebtables-restore lines."""

    create: list
    add: list
    remove: list
    had: bool      # whether the tap had a rule in the tree
    needed: bool   # whether any tap is left in the tree


def l2_tree(state, base, option):
    """``base``'s dispatch tree in an ebtables/arptables table (:func:`iftree.read`)."""
    return iftree.read(base, state.chains, [
        (name, rule_iface(rule, option), _jump_target(rule), rule)
        for name in iftree.chains_of(base, state.chains) for rule in state.chains[name]])


def _l2_tree(state, base, option, tap, leaf):
    """``tap``'s rule in ``base``'s tree becomes ``leaf`` (tokens; None: no rule)."""
    tree = l2_tree(state, base, option)
    change = tree.change(tap, leaf is not None)
    home = iftree.home(base, tap)
    had = tree.of(tap)
    # Already there (the tools print options in their own order): it keeps its place.
    keeps = leaf and [(name, sorted(rule.split())) for name, rule in had] == [(home, sorted(leaf))]
    wire = [f"{iftree.parent(base, p)} {option} {iftree.wildcard(p)} -j {iftree.node(base, p)}"
            for p in (*change.wire, *change.unwire)]
    return TreeLines(
        create=[f":{iftree.node(base, p)} RETURN" for p in change.create],
        add=([] if keeps or not leaf else [f"-A {home} {' '.join(leaf)}"])
        + [f"-A {w}" for w in wire[:len(change.wire)]],
        remove=([] if keeps else [f"-D {name} {rule}" for name, rule in had])
        + [f"-D {w}" for w in wire[len(change.wire):]]
        + [f"-X {iftree.node(base, p)}" for p in change.delete],
        had=bool(had), needed=tree.needed(tap, leaf is not None))


def eb_apply_lines(state, tap, plan):
    """``ebtables-restore --noflush`` lines (table nat) replacing ``tap``'s objects: one
    transaction with ebtables-nft. The dispatch trees exist while some tap needs them."""
    chain = tap_chain(tap)
    new_chain = plan.eb_chain if plan else []
    trees = {FROM: _l2_tree(state, FROM, "-i", tap, ["-i", tap, "-j", chain] if new_chain
                            else None),
             PRV: _l2_tree(state, PRV, "-o", tap, (plan.eb_prv if plan else None) or None)}
    need = {base: tree.needed for base, tree in trees.items()}
    lines = [f":{name} RETURN" for name in (FROM, PRV) if need[name] and name not in state.chains]
    lines += [line for tree in trees.values() for line in tree.create]
    if new_chain:
        lines.append(f"-F {chain}" if chain in state.chains else f":{chain} RETURN")
        lines += [f"-A {chain} {' '.join(rule)}" for rule in new_chain]
    lines += [line for tree in trees.values() for line in tree.remove]
    if chain in state.chains and not new_chain:
        lines += [f"-F {chain}", f"-X {chain}"]
    lines += [line for tree in trees.values() for line in tree.add]
    lines += _skeleton_jumps(state, EB_JUMPS, need, "-I {builtin} 1 -j {target}")
    if not lines:
        return []
    return ["*nat", *lines]


def _skeleton_jumps(state, jumps, need, add_format):
    lines = []
    for builtin, target in jumps:
        have = [rule for chain, rule in state.jumps if chain == builtin and _jump_target(rule) == target]
        if need[target] and not have:
            lines.append(add_format.format(builtin=builtin, target=target))
        elif not need[target]:
            lines += [f"-D {builtin} {rule}" for rule in have]
            if target in state.chains:
                # Already emptied by this batch: ebtables-nft-restore fails a -X after a
                # -F of a chain whose rules were deleted earlier in the same batch.
                lines.append(f"-X {target}")
    return lines


def eb_teardown_lines(state):
    lines = [f"-D {builtin} {rule}" for builtin, rule in state.jumps]
    lines += [f"-F {name}" for name in sorted(state.chains)]
    lines += [f"-X {name}" for name in sorted(state.chains)]
    return ["*nat", *lines] if lines else []


def arp_apply_commands(state, tap, plan):
    """arptables commands replacing ``tap``'s objects, in an order that never lets the
    tap's ARP through unchecked while it is re-applied. Single commands, not one
    transaction: arptables-nft-restore 1.8.9 --noflush cannot delete (-D, -F, -X
    fail) nor append to a chain the file does not declare (and declaring flushes)."""
    chain = tap_chain(tap)
    new = plan.arp_chain if plan else []
    had = chain in state.chains
    tree = _l2_tree(state, FROM, "-i", tap, ["-i", tap, "-j", chain] if new else None)
    guard = ["-i", tap, "-j", "DROP"]
    replacing = (had or tree.had) and bool(new)
    cmds = [["-I", FROM, "1", *guard]] if replacing else []
    cmds += _commands(tree.remove)   # by full spec (spec §2.11)
    if had:
        cmds += [["-F", chain]] + ([] if new else [["-X", chain]])
    if new:
        if FROM not in state.chains:
            cmds.append(["-N", FROM])
        cmds += _commands(tree.create) + ([] if had else [["-N", chain]])
        cmds += [["-A", chain, *rule] for rule in new] + _commands(tree.add)
        for builtin, target in ARP_JUMPS:
            if not any(c == builtin and _jump_target(x) == target for c, x in state.jumps):
                cmds.append(["-I", builtin, "1", "-j", target])
    if replacing:
        cmds.append(["-D", FROM, *guard])
    if not tree.needed:
        cmds += [["-D", builtin, *rule.split()] for builtin, rule in state.jumps]
        if FROM in state.chains:
            cmds.append(["-X", FROM])
    return cmds


def _commands(lines):
    """Restore lines as arptables commands (``:NAME POLICY`` creates a chain)."""
    return [["-N", line[1:].split()[0]] if line.startswith(":") else line.split()
            for line in lines]


def arp_teardown_commands(state):
    cmds = [["-D", builtin, *rule.split()] for builtin, rule in state.jumps]
    cmds += [["-F", name] for name in sorted(state.chains)]
    return cmds + [["-X", name] for name in sorted(state.chains)]
