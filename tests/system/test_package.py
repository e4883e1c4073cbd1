"""The .deb, built, checked, installed, run and purged: what an operator gets from apt.

The story runs the installed package, not this tree: ``/usr/bin/snf-ganeti`` on Debian's
Python, with ``/etc/snf-ganeti/snf-ganeti.yaml`` as its config, Ganeti calling the hooks,
NIC script and OS definition the package put in place. Only the test's own processes (the
daemons, which systemd would run) are started here.
"""

import os
import shutil
import tempfile

import pytest

from tests.support import config_cache
from tests.support.package_story import (PACKAGE, Daemon, apt_get, build_deb,
                                         check_installed, configure, run, story)
from tests.system.test_ifscripts_system import outside  # noqa: F401 (fixture)

pytestmark = pytest.mark.system
# Where a package may leave traces: what apt, dpkg and the kernel own, not the package's files.
SNAPSHOT_ROOTS = ("/etc", "/usr", "/lib", "/var/lib", "/var/spool", "/srv", "/opt", "/run")
ALLOWED_CHANGES = ("/var/lib/dpkg/", "/var/lib/apt/", "/var/cache/", "/var/lib/ganeti/",
                   "/run/ganeti/", "/var/lib/systemd/", "/run/snf-ganeti-test/",
                   "/var/lib/snf-ganeti-test/", "/etc/ld.so.cache", "/run/netns/",
                   "/var/lib/rabbitmq/", "/run/lock/", "/var/lib/dhcp/", "/run/sshd",
                   "/var/lib/ucf/", "/usr/lib/python3/dist-packages/__pycache__/")


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    return build_deb(tmp_path_factory.mktemp("deb"))


def snapshot():
    """{path: (mode, symlink target)} of everything under SNAPSHOT_ROOTS."""
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
    # lintian 2.116 leaves its cache files (mldbm-elf-*) in $TMPDIR: here, not in /tmp.
    with tempfile.TemporaryDirectory(prefix="snft-lintian-") as scratch:
        result = run("lintian", str(deb), check=False, env={**os.environ, "TMPDIR": scratch})
    errors = [line for line in result.stdout.splitlines() if line.startswith("E:")]
    assert not errors, result.stdout


def test_installed_package_runs_the_whole_story_and_purge_leaves_nothing(
        deb, ganeti_cluster, ganeti_instance_name, amqp_config, consumer, outside, os_images,
        tmp_path):
    assert run("dpkg-query", "-W", PACKAGE, check=False).returncode != 0, "already installed"
    assert not os.path.lexists("/etc/ganeti/kvm-vif-bridge"), "an operator's NIC script"
    # Not installed, so a parse cache there is one the source tree's commands left (a hook
    # Ganeti ran late for an earlier test); the package's purge would rightly remove it.
    config_cache.discard()
    before, tables = snapshot(), run("nft", "list", "tables").stdout
    daemons = []
    try:
        apt_get("install", "--no-install-recommends", str(deb))
        check_installed()
        images = tmp_path / "images"
        images.mkdir()
        shutil.copy(os_images.get(), images / "debian.img")
        configure(list(amqp_config.urls), amqp_config.exchange, ganeti_cluster, images)
        daemons = [Daemon("eventd", tmp_path), Daemon("dhcpd", tmp_path)]
        story(ganeti_cluster, ganeti_instance_name, consumer, outside)
        routed_link_in_use()
    finally:
        for daemon in daemons:
            daemon.stop()
        apt_get("purge", PACKAGE, check=False)
        rules = link_rules()
        for family in ("-4", "-6"):
            run("ip", family, "rule", "del", *ROUTED_RULE, check=False)
    after = snapshot()
    left = [f"{path} (before: {before.get(path)}, after: {after.get(path)})"
            for path in unexplained(before, after) if not owned_by_another_package(path)]
    assert left == [], "purge left these behind"
    assert run("nft", "list", "tables").stdout == tables, "the package left nft tables"
    assert rules == "", "purge left a routed link's policy rule"


# A routed link's rule as ifup leaves it while the link has a NIC (the story's NIC is bridged).
ROUTED_RULE = ["fwmark", "0x534e0fa0", "lookup", "4000"]


def routed_link_in_use():
    for family in ("-4", "-6"):
        run("ip", family, "rule", "add", *ROUTED_RULE)
    assert link_rules().count("lookup 4000") == 2
    link = "/var/lib/snf-ganeti/nics/links/0x534e0fa0-4000"   # as NicStore.join_link makes it
    os.makedirs(link, exist_ok=True)
    open(os.path.join(link, "tap4000"), "w").close()


def link_rules():
    return "".join(line + "\n" for family in ("-4", "-6")
                   for line in run("ip", family, "rule", "show").stdout.splitlines()
                   if "lookup 4000" in line)
