"""Drive ifup/ifdown in-process inside a namespace, for tests and bench/ifup.

usage: ip netns exec NS python -m tests.support.ifup_driver CONFIG ACTION...
ACTION is `up` (NIC env from the process environment, MAC overridable with
MAC_<n>), `down`, `cycles:N` (N up/down pairs), `listing` or `modules`; prints one
JSON object per action: the host's ruleset listing and `ip rule` after it (for
`modules`: which of pyroute2 and pika the process has loaded).
"""

import json
import os
import subprocess
import sys

import yaml

from snf_ganeti import config as config_mod, pathutils
from snf_ganeti.ifscripts import apply


def write_config(directory, backend="nftables"):
    """The config file the driver reads: spool, NIC states and bindings under
    ``directory`` (a pathlib.Path), the firewall ``backend``; its path."""
    path = directory / "c.yaml"
    path.write_text(yaml.safe_dump({
        "amqp": {"spool_dir": str(directory / "spool")},
        "network": {"state_dir": str(directory / "nics"), "firewall_backend": backend},
        "dhcp": {"bindings_dir": str(directory / "dhcp")}}))
    return str(path)


def snapshot(config):
    backend = apply.firewall_backend(config)
    rules = subprocess.run(["ip", "rule"], capture_output=True, text=True).stdout + \
        subprocess.run(["ip", "-6", "rule"], capture_output=True, text=True).stdout
    files = sorted(f for f in os.listdir(config.network.state_dir) if f != ".lock") if os.path.isdir(
        config.network.state_dir) else []
    return {"firewall": backend.listing(), "rules": rules, "state_files": files,
            "bindings": sorted(os.listdir(config.dhcp.bindings_dir))
            if os.path.isdir(config.dhcp.bindings_dir) else []}


def main(config_path, *actions):
    config = config_mod.load(config_path)
    pathutils.IP = os.environ.get("SNF_TEST_IP", pathutils.IP)  # a test's probe around ip
    for action in actions:
        if action == "up":
            apply.ifup(config, os.environ, publish=False)
        elif action.startswith("up:"):
            apply.ifup(config, {**os.environ, "MAC": action[3:]}, publish=False)
        elif action == "down":
            apply.ifdown(config, os.environ, publish=False)
        elif action == "modules":  # what the actions before loaded of the heavy imports
            print(json.dumps({"action": action, "loaded": sorted(
                m for m in ("pyroute2", "pika") if m in sys.modules)}), flush=True)
            continue
        elif action.startswith("cycles:"):
            for _ in range(int(action[7:])):
                apply.ifup(config, os.environ, publish=False)
                apply.ifdown(config, os.environ, publish=False)
        print(json.dumps({"action": action, **snapshot(config)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
