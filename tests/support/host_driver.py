"""Run the ifscripts host edge (no firewall) inside a namespace, for tests.

usage: ip netns exec NS python -m tests.support.host_driver up|down|bridge CONFIG_JSON
NIC environment in the process environment; prints the state (up) as JSON.
"""

import json
import os
import sys

from snf_ganeti import config as config_mod
from snf_ganeti.ifscripts.firewall import parse_profiles
from snf_ganeti.ifscripts.host import Host
from snf_ganeti.ifscripts.nic import parse_env, parse_tap
from snf_ganeti.ifscripts.plan import PrivateBridge, plan_nic


def main(action, network_json):
    network = config_mod.NetworkConfig(**json.loads(network_json))
    host = Host(network)
    if action == "bridge":  # ensure a private bridge: NAME TRANSPORT SEGMENT in env
        host.ensure_private_bridge(PrivateBridge(os.environ["NAME"], network.private_transport,
                                                 int(os.environ["SEGMENT"])))
        return 0
    if action == "up":
        plan = plan_nic(parse_env(os.environ), network, parse_profiles(network.profiles))
        host.require_tap(plan.tap)
        host.cleanup(plan.tap, json.loads(os.environ.get("OLD_STATE", "null")))
        print(json.dumps(host.setup(plan)))
    else:
        host.cleanup(parse_tap(os.environ), json.loads(os.environ.get("OLD_STATE", "null")))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
