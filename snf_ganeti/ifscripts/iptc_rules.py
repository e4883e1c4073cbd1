"""Between iptables-style rule tokens/text and python-iptables (``iptc``) rules.

``build_rule`` makes a rule from tokens as they are written in the ruleset plan
(:mod:`snf_ganeti.ifscripts.iptables_render`); ``rule_text`` writes any rule back as
such text, so that a chain can be compared with the plan rule by rule.
"""

import ipaddress

from snf_ganeti.errors import one_line


def build_rule(iptc, family, tokens):
    """A python-iptables rule from iptables-style tokens; ValueError if it cannot be."""
    rule = iptc.Rule6() if family == "ip6" else iptc.Rule()
    current, i = None, 0
    try:
        while i < len(tokens):
            negate = tokens[i] == "!"
            if negate:
                i += 1
            option = tokens[i]
            values = []
            i += 1
            while i < len(tokens) and tokens[i] != "!" and not tokens[i].startswith("-"):
                values.append(tokens[i])
                i += 1
            value = values[0] if values else ""
            attribute = {"-s": "src", "-d": "dst", "-p": "protocol", "-i": "in_interface",
                         "-o": "out_interface"}.get(option)
            if attribute:
                if attribute == "protocol" and family == "ip6" and value == "ipv6-icmp":
                    value = "58"
                setattr(rule, attribute, ("!" if negate else "") + value)
            elif option == "-m":
                current = rule.create_match(value)
            elif option == "-j":
                current = rule.create_target(value)
            elif option.startswith("--") and current is not None:
                if len(values) > 1:
                    current.set_parameter(option[2:], (["!"] if negate else []) + values)
                else:
                    current.set_parameter(option[2:], ("!" if negate else "") + value)
            else:
                raise ValueError(f"unexpected {option!r}")
    except Exception as err:
        raise ValueError(f"cannot build rule {' '.join(tokens)!r}: {one_line(err)}") from None
    return rule


def rule_tap(rule):
    """The tap a rule of snf-mac (-i TAP) or snf-bridged (--physdev-out TAP) is for."""
    if rule.in_interface:
        return rule.in_interface
    for match in rule.matches:
        if match.name == "physdev":
            out = match.get_all_parameters().get("physdev-out")
            if out:
                return out[-1]
    return None


def rule_text(rule):
    """A python-iptables rule as iptables-like text: equal rules give equal text."""
    parts = []
    for option, value, default in (("-s", rule.src, None), ("-d", rule.dst, None),
                                   ("-i", rule.in_interface, None),
                                   ("-o", rule.out_interface, None),
                                   ("-p", rule.protocol, "ip")):
        if value is None or value == default:
            continue
        negated = value.startswith("!")
        value = value.lstrip("!")
        if option in ("-s", "-d"):
            value = _network(value)
            if value is None:
                continue
        parts += (["!"] if negated else []) + [option, value]
    for match in rule.matches:
        parts += ["-m", match.name] + _parameters(match.get_all_parameters())
    if rule.target is not None and rule.target.name:
        parts += ["-g" if rule.target.goto else "-j", rule.target.name]
        parts += _parameters(rule.target.get_all_parameters())
    return " ".join(parts)


def _network(text):
    """'addr/mask' (netmask or length) as addr/len; None for 0/0 and ::/0."""
    net = ipaddress.ip_network(text, strict=False)
    return None if net.prefixlen == 0 else str(net)


def _parameters(params):
    parts = []
    for name, values in params.items():
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        negated = bool(values) and values[0] == "!"
        parts += (["!"] if negated else []) + [f"--{name}"]
        parts += [str(v) for v in values[1 if negated else 0:] if str(v)]
    return parts
