"""The story an operator sees from the installed package, shared by the package's system test
and ``make demo``: build the .deb from the tracked files, install it, configure it, run its
daemons as their systemd units do, and drive Ganeti through an instance's life while checking
what the host and the AMQP feed show."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.support.procs import ROOT, wait_until

PACKAGE = "snf-ganeti"
GUEST_IP = "198.51.100.54"


def run(*argv, check=True, timeout=600, env=None, cwd=None):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def installed_env():
    """The environment of a process on an operator's node: no test tree on the path."""
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def build_deb(work):
    """dpkg-buildpackage on a copy of the tree's tracked files in ``work``; the .deb's path."""
    src = Path(work) / "snf-ganeti"
    files = run("git", "-C", ROOT, "ls-files", "-z").stdout.split("\0")
    for name in filter(None, files):
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, name), target, follow_symlinks=False)
    run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src, timeout=900)
    (built,) = Path(work).glob(f"{PACKAGE}_*.deb")
    return built


def apt_get(*argv, check=True):
    return run("apt-get", "-y", *argv, check=check, timeout=900,
               env={**installed_env(), "DEBIAN_FRONTEND": "noninteractive"})


class Daemon:
    """One of the package's daemons, as its systemd unit runs it (ExecStart, clean env)."""

    def __init__(self, name, log_dir):
        self.log = open(log_dir / f"{name}.log", "w")
        self.proc = subprocess.Popen(["/usr/bin/snf-ganeti", name], stdout=self.log,
                                     stderr=self.log, env=installed_env(), cwd="/")

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait(timeout=60)
        self.log.close()
        return code


def check_installed():
    hook = "/usr/lib/snf-ganeti/hook"
    for path in ("instance-add", "instance-start", "instance-stop", "instance-remove",
                 "instance-migrate", "instance-failover"):
        assert os.readlink(f"/etc/ganeti/hooks/{path}-post.d/snf-ganeti") == hook
    assert os.readlink("/etc/ganeti/kvm-vif-bridge") == "/usr/lib/snf-ganeti/kvm-vif-bridge"
    assert Path("/usr/share/ganeti/os/snf-image/ganeti_api_version").read_text().strip() == "20"
    units = [f"/lib/systemd/system/snf-ganeti-{name}.service" for name in ("eventd", "dhcpd")]
    # systemd-analyze leaves a marker of its unit loading behind on its first run since boot.
    marker = Path("/run/systemd/systemd-units-load")
    had_marker = marker.exists()
    verified = run("systemd-analyze", "verify", *units, check=False)
    if not had_marker:
        marker.unlink(missing_ok=True)
    assert verified.returncode == 0 and not verified.stdout.strip() and \
        not verified.stderr.strip(), verified.stderr
    for unit in units:  # `systemctl help` opens these: the pages must not be gzipped away
        for line in Path(unit).read_text().splitlines():
            if line.startswith("Documentation="):
                for url in line.split("=", 1)[1].split():
                    assert not url.startswith("file://") or Path(url[7:]).is_file(), url
    assert run("/usr/bin/snf-ganeti", "--help", env=installed_env()).returncode == 0
    # It holds the broker's password.
    assert Path("/etc/snf-ganeti/snf-ganeti.yaml").stat().st_mode & 0o7777 == 0o640


def configure(urls, exchange, cluster, images):
    """What an operator edits after installing: the broker, this node's name, images, DNS."""
    Path("/etc/snf-ganeti/snf-ganeti.yaml").write_text(yaml.safe_dump({
        "amqp": {"urls": urls, "exchange": exchange},
        "eventd": {"node_name": cluster.node},
        "osdefinition": {"image_dir": str(images)},
        "dhcp": {"nameservers": [cluster.node_ip]}}))
    run("/usr/bin/snf-ganeti", "config", "check", env=installed_env())


def outside_namespace(netns, cluster, address="198.51.100.60"):
    """A namespace on the cluster's bridge: the network the guest is reached from."""
    out = netns("out")
    host_end = netns.ifname("so")
    netns.veth(None, out, host_end, "eth0")
    run("ip", "link", "set", host_end, "master", cluster.bridge, "up")
    out.run("ip", "addr", "add", f"{address}/24", "dev", "eth0")
    out.run("ip", "link", "set", "eth0", "up")
    return out


def kind(message):
    """The message type; ganeti-create-progress bodies carry snf-image's monitor type."""
    return "ganeti-create-progress" if message["type"].startswith("image-") else message["type"]


def story(cluster, name, consumer, outside):
    network = f"snf-pkg-{os.getpid()}"
    cluster.gnt("network", "add", "--network=198.51.100.0/24", f"--gateway={cluster.node_ip}",
                "--tags=nfdhcpd", network)
    try:
        cluster.gnt("network", "connect", "-N", f"mode=bridged,link={cluster.bridge}", network,
                    "default")
        props = json.dumps({"OSFAMILY": "linux", "ROOT_PARTITION": "1", "USERS": "root"})
        cluster.gnt("instance", "add", "-t", "file", "--disk", "0:size=128M",
                    "-o", "snf-image+default", "-O",
                    f"img_id=debian.img,img_format=diskdump,img_passwd=Pkg-Pa55,"
                    f"img_properties={props.replace(',', chr(92) + ',')}",
                    "-B", "memory=128M", "-n", cluster.node, "--no-name-check", "--no-ip-check",
                    "-H", "kvm:kernel_args=panic=-1 sandbox_ip=dhcp",
                    "--net", f"0:network={network},ip={GUEST_IP}",
                    "--tags", "synnefo:network:0:protected", name, timeout=600)
        cluster.gnt("instance", "startup", name)
        ping = lambda: outside.run("busybox", "ping", "-c", "1", "-W", "2", GUEST_IP,
                                   check=False).returncode == 0
        assert wait_until(ping, 120), "the guest never answered (its IP comes from dhcpd)"
        tcp7 = outside.run("busybox", "nc", "-w", "2", GUEST_IP, "7", check=False)
        assert "sandbox-guest up" not in tcp7.stdout, "protected let a new TCP connection in"
        wanted = {"ganeti-op-status", "ganeti-create-progress", "ganeti-net-status",
                  "snf-nic-event", "snf-dhcp-lease"}
        feed = []
        assert wait_until(lambda: feed.extend(
            json.loads(body) for _, body in consumer.drain()) or
            wanted <= set(map(kind, feed)), 60), sorted(set(map(kind, feed)))
        created = [m for m in feed if m["type"] == "ganeti-op-status"
                   and m.get("operation") == "OP_INSTANCE_CREATE"]
        assert created and created[-1]["status"] == "success"
        copies = [m["progress"] for m in feed if m["type"] == "image-copy-progress"]
        assert copies and copies[-1] == 100
        lease = next(m for m in feed if m["type"] == "snf-dhcp-lease")
        assert lease["ip"] == GUEST_IP and lease["instance"] == name
        cluster.gnt("instance", "shutdown", "--timeout=0", name)
        state = Path("/var/lib/snf-ganeti")
        assert not list((state / "nics").glob("*.json")), "the stop hook left tap state"
        assert not [p for p in (state / "dhcp").iterdir() if not p.name.startswith(".")]
    finally:
        cluster.remove_instance(name)
        cluster.gnt("network", "disconnect", network, "default", check=False)
        cluster.gnt("network", "remove", network, check=False)
