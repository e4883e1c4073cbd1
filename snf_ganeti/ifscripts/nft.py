"""The nftables firewall backend: each change is one atomic libnftables transaction.

What to change is planned purely in :mod:`snf_ganeti.ifscripts.nft_render`
(which also describes the ruleset); this module reads what the kernel holds,
hands it to the planner and commits the answer, in the current network
namespace, and renders the canonical listing tests compare.
"""

import json

from snf_ganeti.errors import SnfGanetiError, one_line
from snf_ganeti.ifscripts import nft_render as r

ATTEMPTS = 3  # a concurrent change to the same tap between our read and our commit fails ours


class FirewallError(SnfGanetiError):
    """The firewall could not be read or changed."""


class NftBackend:
    """snf-ganeti's firewall in nftables: ``setup``, then ``apply`` per tap."""

    name = "nftables"

    def __init__(self, nft=None):
        self._nft = nft if nft is not None else _libnftables()

    def setup(self, profiles):
        """Create or update the tables, dispatch maps and one chain per profile."""
        self._transact(lambda state: r.setup_commands(state, profiles), "nftables setup")

    def apply(self, tap, nic):
        """Replace whatever is tied to ``tap`` with what ``nic`` needs (None: nothing)."""
        self._transact(lambda state: r.apply_commands(state, tap, nic), f"nftables {tap}")

    def listing(self):
        """Everything snf-ganeti owns as sorted text: equal rulesets give equal text."""
        return listing(self._state(rules=True))

    def taps(self):
        """The names of the taps that have anything in our tables."""
        state = self._state()
        names = {key for family, name in state.maps if name != r.VERSIONS
                 for key in r.keys(state, family, name)}
        for _, chain in state.chains:
            names.update(chain[len(p):] for p in r.TAP_CHAIN_PREFIXES if chain.startswith(p))
        return names

    def teardown(self):
        """Remove everything snf-ganeti owns (its tables), in one transaction."""
        self._run([{"delete": {"table": {"family": f, "name": r.TABLE}}}
                   for f in self._families()], "nftables teardown")

    def _transact(self, plan, what):
        for attempt in range(ATTEMPTS):
            try:
                cmds = plan(self._state())
            except ValueError as err:
                raise FirewallError(f"{what}: {err}") from None
            try:
                return self._run(cmds, what)
            except FirewallError:
                if attempt == ATTEMPTS - 1:
                    raise

    def _state(self, rules=False):
        """What our tables hold; without ``rules``, only chains and set contents.

        libnftables reads a whole table to list even one of its chains, so
        setup and apply, which need no rules, read chains and sets alone:
        their cost then does not grow with the number of taps' rules.
        """
        if rules:
            objects = []
            for family in self._families():  # libnftables answers only the first of several lists
                objects += self._run([{"list": {"table": {"family": family, "name": r.TABLE}}}])
            return read_state(objects)
        objects = list(self._run([{"list": {"chains": None}}]))
        for family, name, kind in r.known_sets():
            try:
                objects += self._run([{"list": {kind: {"family": family, "table": r.TABLE,
                                                       "name": name}}}])
            except FirewallError as err:
                if "No such file or directory" not in str(err):
                    raise               # not set up (yet) is fine; anything else is not
        state = read_state(objects)
        state.tables.update(family for family, _ in [*state.chains, *state.maps])
        return state

    def _families(self):
        tables = [obj["table"] for obj in self._run([{"list": {"tables": None}}]) if "table" in obj]
        return sorted(t["family"] for t in tables
                      if t["name"] == r.TABLE and t["family"] in r.FAMILIES)

    def _run(self, cmds, what="nftables"):
        if not cmds:
            return []
        try:
            rc, output, error = self._nft.json_cmd({"nftables": cmds})
        except Exception as err:  # libnftables raises on JSON it cannot even parse
            raise FirewallError(f"{what}: {err}") from None
        if rc != 0:
            raise FirewallError(f"{what}: {one_line(error)}")
        return output.get("nftables", []) if isinstance(output, dict) else []


def _libnftables():
    try:
        import nftables
    except ImportError:
        raise FirewallError("nftables: python3-nftables is not installed") from None
    return nftables.Nftables()


# --- reading ------------------------------------------------------------------------------

def read_state(objects):
    """A State from the objects of `list table` answers (other tables are skipped)."""
    state = r.State()
    for obj in objects:
        for kind, body in obj.items():
            if kind == "table" and body.get("name") == r.TABLE:
                state.tables.add(body["family"])
            if body.get("table") != r.TABLE:
                continue
            key = (body["family"], body.get("chain", body.get("name")))
            if kind in ("map", "set"):
                kinds = [body.get("type"), body.get("map")]
                state.maps[key] = {"kind": kind, "type": " : ".join(_text(t) for t in kinds if t),
                                   "elems": [_element(e) for e in body.get("elem", [])]}
            elif kind == "chain":
                spec = {k: body[k] for k in ("type", "hook", "prio", "policy") if k in body}
                state.chains.setdefault(key, {"rules": []})["spec"] = spec
            elif kind == "rule":
                state.chains.setdefault(key, {"spec": {}, "rules": []})["rules"].append(
                    {"expr": body.get("expr", []), "comment": body.get("comment")})
    return state


def _element(elem):
    """(key, verdict or None) of one set or map element."""
    key, value = (elem if isinstance(elem, list) else (elem, None))
    if isinstance(key, dict) and "elem" in key:    # an element with a comment or counter
        key = key["elem"]["val"]
    return key, value


# --- canonical text ----------------------------------------------------------------------

def listing(state):
    """Everything snf-ganeti owns as sorted text: equal rulesets give equal text."""
    lines = []
    for family in sorted(state.tables):
        lines.append(f"table {family} {r.TABLE}")
        for (fam, name), content in sorted(state.maps.items()):
            if fam == family:
                lines.append(f"  {content['kind']} {name} {{ {content['type']} }}")
                lines += sorted(f"    {_quoted(key)}" + (f" : {_text(value)}" if value else "")
                                for key, value in content["elems"])
        for (fam, name), chain in sorted(state.chains.items()):
            if fam == family:
                spec, hook = chain["spec"], ""
                if spec.get("hook"):
                    hook = (f" {{ type {spec.get('type')} hook {spec['hook']} priority "
                            f"{spec.get('prio')}; policy {spec.get('policy')} }}")
                lines.append(f"  chain {name}{hook}")
                lines += [f"    {_rule_text(rule)}" for rule in chain["rules"]]
    return "".join(line + "\n" for line in lines)


def _rule_text(rule):
    text = " ".join(_text(expr) for expr in rule["expr"])
    return text + (f' comment "{rule["comment"]}"' if rule.get("comment") else "")


def _quoted(value):
    return f'"{value}"' if isinstance(value, str) else _text(value)


def _text(expr):
    """nft-like text of the libnftables JSON expressions this module writes; JSON otherwise."""
    if isinstance(expr, (str, int)):
        return str(expr)
    if isinstance(expr, list):
        return "(" + "|".join(_text(e) for e in expr) + ")"
    if not isinstance(expr, dict) or len(expr) != 1:
        return json.dumps(expr, sort_keys=True)
    (kind, body), = expr.items()
    if body is None:                                    # accept, drop, return, ...
        return kind
    if kind == "match":
        op = "" if body["op"] == "==" else body["op"] + " "
        return f"{_text(body['left'])} {op}{_text(body['right'])}"
    if kind == "payload" and "field" in body:
        return f"{body['protocol']} {body['field']}"
    if kind == "meta":
        return body["key"] if body["key"] in ("iifname", "oifname") else f"meta {body['key']}"
    if kind == "&":
        return " & ".join(_text(e) for e in body)
    if kind == "set":
        items = body if isinstance(body, list) else [body]
        return "{ " + ", ".join(sorted(_text(e) for e in items)) + " }"
    if kind == "prefix":
        return f"{body['addr']}/{body['len']}"
    if kind in ("jump", "goto"):
        return f"{kind} {body['target']}"
    if kind == "vmap":
        return f"{_text(body['key'])} vmap {_text(body['data'])}"
    if kind == "mangle":
        value = body["value"]
        return f"{_text(body['key'])} set " + (f"{value:#x}" if isinstance(value, int) else
                                                _text(value))
    if kind == "counter":
        return "counter"                                # counts would make listings differ
    return json.dumps(expr, sort_keys=True)
