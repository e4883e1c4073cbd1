"""The package's NIC script on the real Ganeti cluster: a KVM (TCG) guest behind its profile."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.package_story import outside_namespace, wait_until
from tests.support.procs import ROOT

pytestmark = pytest.mark.system
VIF_BRIDGE = Path("/etc/ganeti/kvm-vif-bridge")
GUEST_IP = "198.51.100.52"
OUTSIDE_IP = "198.51.100.60"


@pytest.fixture
def nic_script(ganeti_cluster, amqp_config, tmp_path):
    """Install ``snf-ganeti ifup`` as Ganeti's kvm-vif-bridge for the test; restore after."""
    config = tmp_path / "snf-ganeti.yaml"
    amqp = {**amqp_config.__dict__, "urls": list(amqp_config.urls)}
    config.write_text(yaml.safe_dump({
        "amqp": amqp, "network": {"state_dir": str(tmp_path / "nics")},
        "dhcp": {"bindings_dir": str(tmp_path / "dhcp")}}))
    saved = VIF_BRIDGE.read_bytes() if VIF_BRIDGE.exists() else None
    tables_before = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    VIF_BRIDGE.write_text(f"#!/bin/sh\nexport PYTHONPATH={ROOT} SNF_GANETI_CONFIG={config}\n"
                          f"exec {sys.executable} -m snf_ganeti.cli ifup\n")
    VIF_BRIDGE.chmod(0o755)
    yield tmp_path
    for state in (tmp_path / "nics").glob("*.json"):  # Ganeti 3.0 calls no ifdown
        subprocess.run([sys.executable, "-m", "snf_ganeti.cli", "--config", str(config), "ifdown"],
                       env={**os.environ, "PYTHONPATH": ROOT, "INTERFACE": state.stem}, check=True)
    if "snf_ganeti" not in tables_before:  # the firewall skeleton this test brought
        for family in ("inet", "bridge", "arp"):
            subprocess.run(["nft", "delete", "table", family, "snf_ganeti"], capture_output=True)
    if saved is None:
        VIF_BRIDGE.unlink()
    else:
        VIF_BRIDGE.write_bytes(saved)


@pytest.fixture
def outside(netns, ganeti_cluster):
    """A namespace on the cluster's bridge: the network the guest is reached from."""
    return outside_namespace(netns, ganeti_cluster, OUTSIDE_IP)


def reachable(ns, port=None, timeout=2.0):
    if port is None:
        return ns.run("busybox", "ping", "-c", "1", "-W", "2", GUEST_IP, check=False).returncode == 0
    code = ("import socket,sys\ns=socket.socket();s.settimeout(%s)\n"
            "try: s.connect((%r,%d)); print(s.recv(64))\nexcept OSError: sys.exit(1)"
            % (timeout, GUEST_IP, port))
    return ns.run(sys.executable, "-c", code, check=False).returncode == 0


def test_kvm_guest_is_reachable_as_its_profile_says(ganeti_cluster, ganeti_instance_name,
                                                    nic_script, outside, consumer):
    name = ganeti_instance_name
    ganeti_cluster.gnt(
        "instance", "add", "-t", "diskless", "-o", ganeti_cluster.os_name, "--no-start",
        "--no-name-check", "--no-ip-check", "-n", ganeti_cluster.node, "-B", "memory=128M",
        "-H", f"kvm:kernel_args=panic=-1 sandbox_ip={GUEST_IP}/24 "
              f"sandbox_gw={ganeti_cluster.node_ip}",
        "--net", f"0:mode=bridged,link={ganeti_cluster.bridge},ip={GUEST_IP}",
        "--tags", "synnefo:network:0:protected", name)
    ganeti_cluster.gnt("instance", "startup", name)
    assert wait_until(lambda: reachable(outside)), "guest never answered ping (ICMP passes)"
    assert not reachable(outside, port=7), "protected let a new TCP connection in"
    states = list((nic_script / "nics").glob("*.json"))
    assert len(states) == 1
    state = json.loads(states[0].read_text())
    assert state["profile"] == "protected" and state["instance"] == name
    events = [json.loads(body) for _, body in consumer.drain(expect=1)]
    assert events[0]["type"] == "snf-nic-event" and events[0]["firewall"] == "protected"

    ganeti_cluster.gnt("instance", "remove-tags", name, "synnefo:network:0:protected")
    ganeti_cluster.gnt("instance", "add-tags", name, "synnefo:network:0:unprotected")
    ganeti_cluster.gnt("instance", "reboot", "--type=hard", name)
    assert wait_until(lambda: reachable(outside, port=7)), "unprotected did not let TCP 7 in"
    ganeti_cluster.gnt("instance", "shutdown", "--timeout=0", name)


DHCP_GUEST_IP = "198.51.100.53"
HOOKS_DIR = Path("/etc/ganeti/hooks")
HOOK_PATHS = ("instance-add", "instance-start", "instance-reboot", "instance-stop",
              "instance-modify", "instance-migrate", "instance-failover", "instance-remove",
              "instance-rename", "instance-reinstall")


@pytest.fixture
def hooks(nic_script, ganeti_cluster):
    """``snf-ganeti hook`` in every instance post-hook directory, with the NIC script's config."""
    config = nic_script / "snf-ganeti.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["eventd"] = {"node_name": ganeti_cluster.node}
    config.write_text(yaml.safe_dump(settings))
    installed, created = [], [d for d in (HOOKS_DIR,) if not d.exists()]
    for path in HOOK_PATHS:
        hook = HOOKS_DIR / f"{path}-post.d" / f"snf-ganeti-test-{os.getpid()}"
        if not hook.parent.exists():
            created.append(hook.parent)
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(f"#!/bin/sh\nexport PYTHONPATH={ROOT} SNF_GANETI_CONFIG={config}\n"
                        f"exec {sys.executable} -m snf_ganeti.cli hook\n")
        hook.chmod(0o755)
        installed.append(hook)
    yield
    for hook in installed:
        hook.unlink()
    for directory in reversed(created):
        directory.rmdir()


@pytest.fixture
def dhcpd(nic_script, amqp_config, ganeti_cluster):
    """snf-ganeti dhcpd on the node, serving the bindings the NIC script writes."""
    config = nic_script / "dhcpd.yaml"
    status = nic_script / "dhcpd-status.json"
    amqp = {**amqp_config.__dict__, "urls": list(amqp_config.urls)}
    config.write_text(yaml.safe_dump({
        "amqp": amqp, "eventd": {"node_name": ganeti_cluster.node},
        "dhcp": {"bindings_dir": str(nic_script / "dhcp"),
                               "status_file": str(status), "nameservers": ["198.51.100.1"]}}))
    log = open(nic_script / "dhcpd.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "snf_ganeti.cli", "--config", str(config),
                             "dhcpd"], stdout=log, stderr=log, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT})
    try:
        assert wait_until(lambda: status.exists() and json.loads(status.read_text())["steering"],
                          seconds=30), (nic_script / "dhcpd.log").read_text()
        yield lambda: json.loads(status.read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_kvm_guest_gets_its_ip_from_dhcpd(ganeti_cluster, ganeti_instance_name, dhcpd,
                                          hooks, nic_script, outside, consumer):
    name, network = ganeti_instance_name, f"snf-dhcp-{os.getpid()}"
    ganeti_cluster.gnt("network", "add", "--network=198.51.100.0/24",
                       f"--gateway={ganeti_cluster.node_ip}", "--tags=nfdhcpd", network)
    try:
        ganeti_cluster.gnt("network", "connect", "-N",
                           f"mode=bridged,link={ganeti_cluster.bridge}", network, "default")
        ganeti_cluster.gnt(
            "instance", "add", "-t", "diskless", "-o", ganeti_cluster.os_name, "--no-start",
            "--no-name-check", "--no-ip-check", "-n", ganeti_cluster.node, "-B", "memory=128M",
            "-H", "kvm:kernel_args=panic=-1 sandbox_ip=dhcp",
            "--net", f"0:network={network},ip={DHCP_GUEST_IP}",
            "--tags", "synnefo:network:0:unprotected", name)
        ganeti_cluster.gnt("instance", "startup", name)
        guest = lambda: outside.run("busybox", "ping", "-c", "1", "-W", "2", DHCP_GUEST_IP,
                                    check=False).returncode == 0
        assert wait_until(guest, seconds=120), f"guest never answered at {DHCP_GUEST_IP}"
        assert wait_until(lambda: dhcpd()["counters"].get("sent_ack") == 1, seconds=5)
        assert dhcpd()["counters"].get("sent_offer") == 1
        feed = [json.loads(body) for _, body in consumer.drain(expect=4)]
        lease = [m for m in feed if m["type"] == "snf-dhcp-lease"]
        assert lease and lease[0]["ip"] == DHCP_GUEST_IP and lease[0]["instance"] == name
        assert lease[0]["node"] == ganeti_cluster.node
        net = [m for m in feed if m["type"] == "ganeti-net-status"]
        assert [m["hook"] for m in net] == ["instance-add", "instance-start"]
        assert net[-1]["nics"][0]["ip"] == DHCP_GUEST_IP
        assert net[-1]["nics"][0]["firewall"] == "unprotected"
        assert list((nic_script / "dhcp").iterdir()), "ifup wrote no binding"
        ganeti_cluster.gnt("instance", "shutdown", "--timeout=0", name)
        # Ganeti 3.0 calls no ifdown: the stop hook removed the tap's host state
        assert not list((nic_script / "nics").glob("*.json"))
        assert not list((nic_script / "dhcp").iterdir())
    finally:
        ganeti_cluster.remove_instance(name)
        ganeti_cluster.gnt("network", "disconnect", network, "default", check=False)
        ganeti_cluster.gnt("network", "remove", network, check=False)
