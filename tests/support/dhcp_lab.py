"""A hypervisor namespace running ``snf-ganeti dhcpd`` and VM namespaces with real DHCP clients.

Topology (networking spec §5.1): ``hv`` holds the taps (veth ends named tapN) and the daemon;
each VM namespace holds the other end as eth0 with the binding's MAC.  Bridged VMs' taps are
ports of ``br0`` in hv, the binding's INDEV.  Client hook scripts dump their environment into
files, so each test reads exactly what the client was told.
"""

import json
import os
import signal
import sys
import time
from dataclasses import dataclass

import yaml

from tests.support.procs import ROOT, env

# A report appears whole (renamed into place): a test waiting for one must never read it
# half written. dhclient renews by unicast from its bound address, so its script configures
# that address.
CLIENT_SCRIPT = """#!/bin/sh
env > "{out}/.report.$$"
mv "{out}/.report.$$" "{out}/$(date +%s%N)-${{reason:-$1}}"
case "$reason" in BOUND|REBOOT)
  ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
esac
"""
SUBNET, GATEWAY, SUBNET6 = "192.0.2.0/24", "192.0.2.1", "2001:db8:1::/64"
NAMESERVERS, NAMESERVERS6 = ["192.0.2.53", "192.0.2.54"], ["2001:db8::53"]


def vm_ip(index):
    return f"192.0.2.{10 + index}" if index < 200 else f"192.0.{2 + index // 200}.{index % 200}"


def vm_mac(index):
    return f"aa:00:00:00:{index >> 8:02x}:{index & 0xff:02x}"


@dataclass
class Vm:
    ns: object
    tap: str
    mac: str
    ip: str
    out: str            # where the client scripts write

    def script(self):
        path = os.path.join(self.out, "hook.sh")
        if not os.path.exists(path):
            with open(path, "w") as stream:
                stream.write(CLIENT_SCRIPT.format(out=self.out))
            os.chmod(path, 0o755)
        return path

    def reports(self, reason=None):
        """The clients' reports (env dicts), oldest first, optionally of one reason."""
        found = []
        for name in sorted(os.listdir(self.out)):
            if "-" not in name or name == "hook.sh":
                continue
            if reason is None or name.split("-", 1)[1] == reason:
                with open(os.path.join(self.out, name)) as stream:
                    found.append(dict(line.split("=", 1) for line in stream.read().splitlines()
                                      if "=" in line))
        return found

    def udhcpc(self, tries=10, timeout=60, check=True):
        # Ten one-second tries: a loaded machine can take seconds to answer.
        return self.ns.run("busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", tries, "-T", 1,
                           "-O", "mtu", "-O", "hostname", "-O", "domain", "-s", self.script(),
                           check=check, timeout=timeout)

    def dhclient(self, *extra, timeout=40, check=True):
        conf = os.path.join(self.out, "dhclient.conf")
        with open(conf, "w") as stream:
            stream.write("timeout 8;\nretry 1;\nrequest subnet-mask, routers, "
                         "domain-name-servers, domain-name, host-name, interface-mtu;\n")
        return self.ns.run("dhclient", *extra, "-1", "-v", "-cf", conf, "-sf", self.script(),
                           "-lf", os.path.join(self.out, "leases"),
                           "-pf", os.path.join(self.out, "dhclient.pid"), "eth0",
                           check=check, timeout=timeout)

    def dhcpcd(self, timeout=40, check=True):
        # dhcpcd keeps leases and pid files in fixed directories: give each run its own.
        argv = ["dhcpcd", "-4", "-1", "-B", "-A", "-L", "-t", "10", "-f", "/dev/null", "-c",
                self.script(), "eth0"]
        return self.ns.run("unshare", "-m", "sh", "-c",
                           "mount -t tmpfs none /var/lib/dhcpcd && mount -t tmpfs none /run && "
                           'exec "$@"', "dhcpcd", *argv, check=check, timeout=timeout)


class DhcpLab:
    def __init__(self, netns, tmp_path, amqp=None):
        self.netns, self.tmp = netns, tmp_path
        self.hv = netns("hv")
        self.bindings_dir = tmp_path / "bindings"
        self.bindings_dir.mkdir()
        self.status_file = tmp_path / "dhcpd-status.json"
        # The daemon's namespace has no broker: lease events wait in the spool, and a short
        # confirm_timeout keeps the daemon from waiting for one at exit.
        self.amqp = {"urls": ["amqp://guest:guest@127.0.0.1:1/"],
                     "spool_dir": str(tmp_path / "spool"), "connect_timeout": 0.5,
                     "confirm_timeout": 1.0, **(amqp or {})}
        self.daemon = None
        self.log = None
        self.bridge = None

    # -- the daemon ------------------------------------------------------------------------

    def config(self, backend="nftables", **dhcp):
        path = self.tmp / "snf-ganeti.yaml"
        path.write_text(yaml.safe_dump({
            "amqp": self.amqp, "eventd": {"node_name": "hv.example.test"},
            "network": {"firewall_backend": backend},
            "dhcp": {"bindings_dir": str(self.bindings_dir), "status_file": str(self.status_file),
                     "nameservers": NAMESERVERS, "nameservers6": NAMESERVERS6,
                     "domain": "example.org", **dhcp}}))
        return str(path)

    def start(self, backend="nftables", **dhcp):
        config = self.config(backend, **dhcp)
        if self.status_file.exists():
            self.status_file.unlink()
        self.log = open(self.tmp / "dhcpd.log", "a")
        self.daemon = self.hv.popen(sys.executable, "-m", "snf_ganeti.cli", "--config",
                                    config, "dhcpd", stdout=self.log, stderr=self.log, cwd=ROOT,
                                    env=env())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise AssertionError(f"dhcpd exited {self.daemon.returncode}:\n{self.logs()}")
            if self.status().get("steering"):
                return self.daemon
            time.sleep(0.05)
        raise AssertionError(f"dhcpd did not become ready:\n{self.logs()}")

    def stop(self, sig=signal.SIGTERM):
        self.daemon.send_signal(sig)
        code = self.daemon.wait(timeout=30)
        self.log.close()
        return code

    def logs(self):
        path = self.tmp / "dhcpd.log"
        return path.read_text() if path.exists() else ""

    def status(self):
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    def explain(self, vm):
        """What a test that found ``vm`` unanswered should say: its client's output, the
        reports it wrote and both ends' packet counters."""
        log = os.path.join(vm.out, "udhcpc.log")
        said = open(log).read().strip() if os.path.exists(log) else "(no client log)"
        tap = self.hv.run("ip", "-s", "-o", "link", "show", vm.tap, check=False).stdout
        eth0 = vm.ns.run("ip", "-s", "-o", "link", "show", "eth0", check=False).stdout
        return (f"{vm.tap}: reports {sorted(os.listdir(vm.out))}\nclient said: {said}\n"
                f"hv: {tap.strip()}\nvm: {eth0.strip()}")

    def counter(self, name):
        return self.status().get("counters", {}).get(name, 0)

    def wait_for(self, predicate, timeout=10, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; status {self.status()}\n"
                             f"{self.logs()[-3000:]}")

    # -- VMs and bindings ------------------------------------------------------------------

    def vm(self, index, bridged=False, binding=True, mac=None, **fields):
        ns = self.netns(f"vm{index}")
        tap = f"tap{index}"
        mac = mac or vm_mac(index)
        self.netns.veth(self.hv, ns, tap, "eth0")
        ns.run("ip", "link", "set", "eth0", "address", mac)
        ns.run("ip", "link", "set", "eth0", "up")
        if bridged:
            self.hv.run("ip", "link", "set", tap, "master", self.ensure_bridge())
        self.hv.run("ip", "link", "set", tap, "up")
        out = self.tmp / f"vm{index}"
        out.mkdir(exist_ok=True)
        vm = Vm(ns, tap, mac, vm_ip(index), str(out))
        if binding:
            self.write_binding(vm, indev="br0" if bridged else tap, **fields)
        return vm

    def ensure_bridge(self):
        if self.bridge is None:
            self.hv.run("ip", "link", "add", "br0", "type", "bridge")
            self.hv.run("ip", "link", "set", "br0", "up")
            self.bridge = "br0"
        return self.bridge

    def binding_text(self, vm, indev=None, **fields):
        values = {"INDEV": indev or vm.tap, "IP": vm.ip, "MAC": vm.mac,
                  "HOSTNAME": f"{vm.tap.replace('tap', 'vm')}.example.org",
                  "SUBNET": SUBNET, "GATEWAY": GATEWAY, "SUBNET6": SUBNET6, "MTU": "1400",
                  **{k.upper(): v for k, v in fields.items()}}
        return "".join(f"{k}={'' if v is None else v}\n" for k, v in values.items())

    def write_binding(self, vm, by_rename=False, **fields):
        path = self.bindings_dir / vm.tap
        text = self.binding_text(vm, **fields)
        if by_rename:
            tmp = self.tmp / f"{vm.tap}.new"
            tmp.write_text(text)
            os.rename(tmp, path)
        else:
            path.write_text(text)
        return path
