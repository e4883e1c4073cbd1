"""A prefix tree of tap names: per-tap dispatch whose cost does not grow with the taps.

ebtables, arptables and iptables' ``physdev`` match an interface by its name or by a
name prefix (``tap1+``), never through a set. So a base chain reaches its taps'
rules through node chains, one per proper prefix of some tap's name: node ``P``
(chain ``BASE.P``; the base chain itself for the empty prefix) holds one jump
``P+c+ -> BASE.P+c`` for each next character ``c`` of a longer name, and the rule
of each tap named ``P`` plus one character. A packet meets at most two rules per
possible character at each character of its tap's name (at most 21 per digit of
``tapN``), whatever the number of taps on the node.

The tree is a function of the set of taps: applying one tap changes only the nodes
on its own path, and the same set of taps always gives the same chains.
"""

from dataclasses import dataclass


def node(base, prefix):
    """The chain of ``prefix``'s node under ``base`` (``base`` itself for '')."""
    return f"{base}.{prefix}" if prefix else base


def home(base, tap):
    """The chain that holds ``tap``'s own rule."""
    return node(base, tap[:-1])


def parent(base, prefix):
    """The chain that holds the jump to ``prefix``'s node."""
    return node(base, prefix[:-1])


def wildcard(prefix):
    """The interface pattern of every name that starts with ``prefix``."""
    return prefix + "+"


def is_wildcard(name):
    return name.endswith("+")


def is_node(base, chain):
    return chain.startswith(base + ".")


def prefix_of(base, chain):
    return chain[len(base) + 1:]


def chains_of(base, chains):
    """The names among ``chains`` that are ``base`` or one of its nodes."""
    return [name for name in chains if name == base or is_node(base, name)]


def prefixes(taps):
    """The node prefixes ``taps`` need (the empty one, the base chain, excluded)."""
    return {tap[:i] for tap in taps for i in range(1, len(tap))}


@dataclass(frozen=True)
class Change:
    """How the nodes go from what exists to what a set of taps needs. Missing chains are
    created empty and wired into their parents deepest first, so a path is complete before
    it is reachable; unwanted ones unwired shallowest first, then deleted once empty."""

    create: tuple
    wire: tuple
    unwire: tuple
    delete: tuple


@dataclass(frozen=True)
class Tree:
    """What a base chain's tree holds now, read from its rules by :func:`read`."""

    base: str
    nodes: frozenset   # the node prefixes whose chains exist
    wired: frozenset   # those whose parent jumps to them (a change cut short may miss some)
    placed: frozenset  # the taps whose rule is in their home chain
    taps: frozenset    # the taps with a rule anywhere (a layout before the tree: the base)
    rules: tuple       # (chain, interface, target, rule) of every rule in the tree

    def of(self, tap):
        """(chain, rule) of ``tap``'s own rules, wherever they are."""
        return [(chain, rule) for chain, iface, _, rule in self.rules if iface == tap]

    def wire_of(self, prefix):
        """(chain, rule) of the jumps to ``prefix``'s node."""
        return [(chain, rule) for chain, iface, _, rule in self.rules
                if chain == parent(self.base, prefix) and iface == wildcard(prefix)]

    def change(self, tap, keep):
        """The node changes once ``tap`` has a rule (``keep``) or none."""
        return change(self.nodes, self.wired, self.placed - {tap} | ({tap} if keep else set()))

    def needed(self, tap, keep):
        """Whether the base chain still has a tap once ``tap`` has a rule or none."""
        return bool(self.taps - {tap} | ({tap} if keep else set()))


def read(base, chains, rules):
    """The tree of ``base`` among ``chains`` (chain names), from ``rules``: (chain,
    interface or None, jump target, rule) for every rule of those chains."""
    rules = tuple(rules)
    nodes = frozenset(prefix_of(base, n) for n in chains if is_node(base, n))
    jumps = {(chain, iface, target) for chain, iface, target, _ in rules}
    taps = [(chain, iface) for chain, iface, _, _ in rules
            if iface is not None and not is_wildcard(iface)]
    return Tree(base, nodes, frozenset(p for p in nodes if (parent(base, p), wildcard(p), node(
        base, p)) in jumps), frozenset(t for chain, t in taps if chain == home(base, t)),
        frozenset(t for _, t in taps), rules)


def change(chains, wired, taps):
    """``chains``: the node prefixes whose chains exist; ``wired``: those whose parent
    jumps to them (a change cut short may leave a chain unwired); ``taps``: the taps there
    will be."""
    wanted = prefixes(taps)
    return Change(tuple(_ordered(wanted - set(chains))), tuple(_ordered(wanted - set(wired))[::-1]),
                  tuple(_ordered(set(wired) - wanted)), tuple(_ordered(set(chains) - wanted)[::-1]))


def _ordered(prefixes):
    return sorted(prefixes, key=lambda p: (len(p), p))
