"""The live demo driven by ``make demo``: broker + Ganeti + agent, the feed printed live.

Runs the agent exactly as an operator would (``snf-ganeti eventd`` on the Ganeti master, in
Ganeti's UTS namespace), drives Ganeti with gnt-* commands, and shows the messages the
frontend would get, as ``snf-ganeti feed`` prints them.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import yaml

from tests.support.rabbitmq import PrivateBroker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = "/var/tmp/snf-ganeti-demo"
CLUSTER = os.path.join(ROOT, "scripts", "ganeti-cluster")
PYTHON = sys.executable
INSTANCE = "snf-demo-1.example.test"
KVM_INSTANCE = "snf-demo-kvm.example.test"
GUEST_IP = "198.51.100.53"
VIF_BRIDGE = "/etc/ganeti/kvm-vif-bridge"
NETWORK = "snf-net-demo"


def say(text):
    print(f"\n=== {text}", flush=True)


def gnt(*argv, check=True):
    print(f"$ {' '.join(argv)}", flush=True)
    result = subprocess.run([CLUSTER, "run", *argv], capture_output=True, text=True)
    if check and result.returncode != 0:
        print(result.stdout + result.stderr, flush=True)
        raise SystemExit(f"demo: {argv[0]} failed")
    return result


def agent(config, *argv):
    """``snf-ganeti ARGV`` in Ganeti's namespace, where this host's FQDN is the node's."""
    env = f"PYTHONPATH={ROOT}"
    return subprocess.Popen([CLUSTER, "run", "env", env, PYTHON, "-m", "snf_ganeti.cli",
                             "--config", config, *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def pump(process, prefix, counter=None):
    for line in process.stdout:
        if counter is not None:
            counter.append(line)
        print(f"{prefix}{line}", end="", flush=True)


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    say("starting a private RabbitMQ broker")
    broker = PrivateBroker(os.path.join(WORK, "rabbitmq"))
    broker.start()
    config = os.path.join(WORK, "snf-ganeti.yaml")
    with open(config, "w") as stream:
        yaml.safe_dump({"amqp": {"urls": [broker.url], "spool_dir": f"{WORK}/spool"},
                        "eventd": {"state_dir": f"{WORK}/eventd", "heartbeat_interval": 0},
                        "network": {"state_dir": f"{WORK}/nics"},
                        "dhcp": {"bindings_dir": f"{WORK}/dhcp"}},
                       stream)
    received, processes, pumps = [], [], []
    try:
        say("snf-ganeti feed (what the frontend receives) and snf-ganeti eventd (the agent)")
        feed = agent(config, "feed")
        processes.append(feed)
        pumps.append(threading.Thread(target=pump, args=(feed, "  feed | ", received), daemon=True))
        pumps[-1].start()
        time.sleep(2)
        eventd = agent(config, "eventd")
        processes.append(eventd)
        pumps.append(threading.Thread(target=pump, args=(eventd, "eventd | "), daemon=True))
        pumps[-1].start()
        time.sleep(3)
        cleanup(check=False)
        say("driving Ganeti")
        gnt("gnt-network", "add", "--network=192.0.2.0/24", "--gateway=192.0.2.1", NETWORK)
        gnt("gnt-network", "connect", "--nic-parameters=mode=bridged,link=gntbr0", NETWORK,
            "default")
        gnt("gnt-instance", "add", "-t", "file", "--disk", "0:size=16M", "-o", "snf-test+default",
            "-H", "fake", "-B", "memory=128M", "--net", "0:mode=bridged,link=gntbr0",
            "--net", f"1:network={NETWORK},ip=192.0.2.10", "--tags", "synnefo:network:0:protected",
            "--no-start", "--no-name-check", "--no-ip-check", "-n", "gnt1.example.test", INSTANCE)
        gnt("gnt-instance", "startup", INSTANCE)
        gnt("gnt-instance", "reboot", INSTANCE)
        gnt("gnt-instance", "shutdown", INSTANCE)
        cleanup(check=True)
        kvm_guest(config)
        time.sleep(3)
        say("snf-ganeti status")
        status = subprocess.run([CLUSTER, "run", "env", f"PYTHONPATH={ROOT}", PYTHON, "-m",
                                 "snf_ganeti.cli", "--config", config, "status"],
                                capture_output=True, text=True)
        print(status.stdout, end="")
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for thread in pumps:  # output ends when the agent itself (not its wrapper) exited
            thread.join(timeout=30)
        broker.destroy()
    say(f"the feed printed {len(received)} messages from the broker")
    return 0 if received else 1


def kvm_guest(config):
    """A KVM (TCG) guest plumbed by snf-ganeti's NIC script, behind the protected profile."""
    say("a KVM guest whose tap snf-ganeti ifup plumbs (as /etc/ganeti/kvm-vif-bridge)")
    saved = open(VIF_BRIDGE, "rb").read() if os.path.exists(VIF_BRIDGE) else None
    with open(VIF_BRIDGE, "w") as stream:
        stream.write(f"#!/bin/sh\nexport PYTHONPATH={ROOT} SNF_GANETI_CONFIG={config}\n"
                     f"exec {PYTHON} -m snf_ganeti.cli ifup\n")
    os.chmod(VIF_BRIDGE, 0o755)
    try:
        gnt("gnt-instance", "add", "-t", "diskless", "-o", "snf-test+default", "--no-start",
            "--no-name-check", "--no-ip-check", "-n", "gnt1.example.test", "-B", "memory=128M",
            "-H", f"kvm:kernel_args=panic=-1 sandbox_ip={GUEST_IP}/24 sandbox_gw=198.51.100.1",
            "--net", f"0:mode=bridged,link=gntbr0,ip={GUEST_IP}",
            "--tags", "synnefo:network:0:protected", KVM_INSTANCE)
        gnt("gnt-instance", "startup", KVM_INSTANCE)
        for _ in range(60):
            if subprocess.run(["busybox", "ping", "-c", "1", "-W", "1", GUEST_IP],
                              capture_output=True).returncode == 0:
                print(f"guest {GUEST_IP} answers ping", flush=True)
                break
        subprocess.run(["nft", "list", "table", "bridge", "snf_ganeti"])
    finally:
        gnt("gnt-instance", "remove", "-f", "--shutdown-timeout=0", KVM_INSTANCE, check=False)
        for name in os.listdir(os.path.join(WORK, "nics")) if os.path.isdir(
                os.path.join(WORK, "nics")) else []:  # Ganeti 3.0 calls no ifdown
            subprocess.run([PYTHON, "-m", "snf_ganeti.cli", "--config", config, "ifdown"],
                           env={**os.environ, "PYTHONPATH": ROOT, "INTERFACE": name[:-5]})
        if saved is None:
            os.unlink(VIF_BRIDGE)
        else:
            with open(VIF_BRIDGE, "wb") as stream:
                stream.write(saved)


def cleanup(check):
    gnt("gnt-instance", "remove", "-f", "--shutdown-timeout=0", INSTANCE, check=check)
    gnt("gnt-network", "disconnect", NETWORK, "default", check=check)
    gnt("gnt-network", "remove", NETWORK, check=check)


if __name__ == "__main__":
    sys.exit(main())
