"""The .deb, built, checked, installed, run and purged: what an operator gets from apt.

The story runs the installed package, not this tree: ``/usr/bin/snf-ganeti`` on Debian's
Python, with ``/etc/snf-ganeti/snf-ganeti.yaml`` as its config, Ganeti calling the hooks,
NIC script and OS definition the package put in place. Only the test's own processes (the
daemons, which systemd would run) are started here.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.support.procs import ROOT
from tests.system.test_ifscripts_system import outside, wait_until  # noqa: F401 (fixture)

pytestmark = pytest.mark.system
PACKAGE = "snf-ganeti"
GUEST_IP = "198.51.100.54"
# Where a package may leave traces: what apt, dpkg and the kernel own, not the package's files.
SNAPSHOT_ROOTS = ("/etc", "/usr", "/lib", "/var/lib", "/var/spool", "/srv", "/opt", "/run")
ALLOWED_CHANGES = ("/var/lib/dpkg/", "/var/lib/apt/", "/var/cache/", "/var/lib/ganeti/",
                   "/run/ganeti/", "/var/lib/systemd/", "/run/snf-ganeti-test/",
                   "/var/lib/snf-ganeti-test/", "/etc/ld.so.cache", "/run/netns/",
                   "/var/lib/rabbitmq/", "/run/lock/", "/var/lib/dhcp/", "/run/sshd",
                   "/var/lib/ucf/", "/usr/lib/python3/dist-packages/__pycache__/")


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


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """The .deb built by dpkg-buildpackage from a copy of this tree's tracked files."""
    work = tmp_path_factory.mktemp("deb")
    src = work / "snf-ganeti"
    files = run("git", "-C", ROOT, "ls-files", "-z").stdout.split("\0")
    for name in filter(None, files):
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, name), target, follow_symlinks=False)
    run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src, timeout=900)
    (built,) = work.glob(f"{PACKAGE}_*.deb")
    return built


def snapshot():
    """{path: (kind, mode, target or size)} of everything under SNAPSHOT_ROOTS."""
    found = {}
    for root in SNAPSHOT_ROOTS:
        for directory, dirs, files in os.walk(root):
            if directory.startswith(("/run/user", "/usr/share/man")):
                continue
            for name in dirs + files:
                path = os.path.join(directory, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                found[path] = (st.st_mode, os.readlink(path) if os.path.islink(path) else None)
    return found


def unexplained(before, after):
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    return sorted(p for p in changed if not p.startswith(ALLOWED_CHANGES) and "__pycache__"
                  not in p)


def owned_by_another_package(path):
    found = run("dpkg-query", "-S", path, check=False)
    return found.returncode == 0 and not found.stdout.startswith(f"{PACKAGE}:")


def test_lintian_reports_no_errors(deb):
    result = run("lintian", str(deb), check=False)
    errors = [line for line in result.stdout.splitlines() if line.startswith("E:")]
    assert not errors, result.stdout


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
    verified = run("systemd-analyze", "verify", *units, check=False)
    assert verified.returncode == 0 and not verified.stdout.strip() and \
        not verified.stderr.strip(), verified.stderr
    assert run("/usr/bin/snf-ganeti", "--help", env=installed_env()).returncode == 0


def configure(amqp_config, cluster, images):
    """What an operator edits after installing: the broker, this node's name, images, DNS."""
    Path("/etc/snf-ganeti/snf-ganeti.yaml").write_text(yaml.safe_dump({
        "amqp": {"urls": list(amqp_config.urls), "exchange": amqp_config.exchange},
        "eventd": {"node_name": cluster.node},
        "osdefinition": {"image_dir": str(images)},
        "dhcp": {"nameservers": [cluster.node_ip]}}))
    run("/usr/bin/snf-ganeti", "config", "check", env=installed_env())


def test_installed_package_runs_the_whole_story_and_purge_leaves_nothing(
        deb, ganeti_cluster, ganeti_instance_name, amqp_config, consumer, outside, os_images,
        tmp_path):
    assert run("dpkg-query", "-W", PACKAGE, check=False).returncode != 0, "already installed"
    assert not os.path.lexists("/etc/ganeti/kvm-vif-bridge"), "an operator's NIC script"
    before = snapshot()
    daemons = []
    try:
        run("apt-get", "install", "-y", "--no-install-recommends", str(deb),
            env={**installed_env(), "DEBIAN_FRONTEND": "noninteractive"})
        check_installed()
        images = tmp_path / "images"
        images.mkdir()
        shutil.copy(os_images.get(), images / "debian.img")
        configure(amqp_config, ganeti_cluster, images)
        daemons = [Daemon("eventd", tmp_path), Daemon("dhcpd", tmp_path)]
        story(ganeti_cluster, ganeti_instance_name, consumer, outside)
    finally:
        for daemon in daemons:
            daemon.stop()
        run("apt-get", "purge", "-y", PACKAGE, check=False,
            env={**installed_env(), "DEBIAN_FRONTEND": "noninteractive"})
    left = [path for path in unexplained(before, snapshot())
            if not owned_by_another_package(path)]
    assert left == [], "purge left these behind"


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
