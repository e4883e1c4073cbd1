"""``snf-ganeti ifup`` / ``ifdown``: Ganeti's KVM NIC script; its part of ``status``."""

import functools
import os

from snf_ganeti import cli

PART = "ifscripts"


def register(sub, common):
    p = sub.add_parser(
        "ifup", parents=[common], help="set up one instance NIC (Ganeti's kvm-vif-bridge)",
        description="Set up the tap named by $INTERFACE as Ganeti's environment describes it "
                    "(MODE, LINK, MAC, IP, TAGS, NETWORK_*): bridge or routes, firewall profile, "
                    "anti-spoofing, DHCP binding. Installed as /etc/ganeti/kvm-vif-bridge. "
                    "Whatever was tied to the tap's name before is removed first.")
    p.set_defaults(handler=HANDLERS["ifup"])
    p = sub.add_parser(
        "ifdown", parents=[common], help="remove one NIC's host state",
        description="Remove everything ifup set up for the tap named by $INTERFACE (firewall, "
                    "rules, routes, neighbour proxies, DHCP binding). Works after the tap is gone. "
                    "Ganeti 3.0 never calls it; the hooks do, on stop, remove, migrate and failover.")
    p.set_defaults(handler=HANDLERS["ifdown"])


def _run(args, action):
    from snf_ganeti.ifscripts import apply
    getattr(apply, action)(cli.load_config(args), os.environ)
    return 0


HANDLERS = {action: functools.partial(_run, action=action) for action in ("ifup", "ifdown")}
# Ganeti runs /etc/ganeti/kvm-vif-bridge, which runs `snf-ganeti ifup`: see cli.ganeti_args.
GANETI_ARGV = {("ifup",): {"handler": HANDLERS["ifup"]}}


def status(config):
    from snf_ganeti.ifscripts.apply import NicStore
    taps = NicStore(config.network.state_dir, config.dhcp.bindings_dir).taps()
    return {"nics_set_up": len(taps), "taps": " ".join(taps) or None,
            "firewall_backend": config.network.firewall_backend}
