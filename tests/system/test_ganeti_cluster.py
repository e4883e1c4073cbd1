"""The real one-node Ganeti cluster that the system tests use (scripts/ganeti-cluster)."""

import glob
import os

import pytest

pytestmark = pytest.mark.system


def test_cluster_verifies(ganeti_cluster):
    result = ganeti_cluster.verify(check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout


def test_cluster_identity(ganeti_cluster):
    assert ganeti_cluster.gnt("cluster", "getmaster").stdout.strip() == ganeti_cluster.node
    with open(os.path.join(ganeti_cluster.data_dir, "ssconf_cluster_name")) as f:
        assert f.read().strip() == ganeti_cluster.cluster_name
    info = ganeti_cluster.gnt("cluster", "info").stdout
    assert "Enabled hypervisors: fake, kvm" in info
    assert "enabled disk templates: diskless, file" in info


def test_namespace_gives_node_fqdn(ganeti_cluster):
    # Python run through the cluster's namespace sees the node's FQDN, as Ganeti does.
    fqdn = ganeti_cluster.run("/usr/bin/python3", "-c",
                              "import socket; print(socket.getfqdn())").stdout.strip()
    assert fqdn == ganeti_cluster.node
    assert ganeti_cluster.run("env").stdout.split("\n")[0].startswith("PATH=")
    assert "PYTEST_CURRENT_TEST" not in ganeti_cluster.run("env").stdout


def test_snf_test_os_is_valid(ganeti_cluster):
    out = ganeti_cluster.gnt("os", "diagnose").stdout
    block = out.split("OS: snf-test ", 1)
    assert len(block) == 2, out
    assert "status: valid" in block[1].split("OS: ", 1)[0]


def test_fake_file_instance_lifecycle(ganeti_cluster, ganeti_instance_name):
    name = ganeti_instance_name
    ganeti_cluster.add_instance(name)
    assert ganeti_cluster.instance_status(name) == "ADMIN_down"
    disks = glob.glob(os.path.join(ganeti_cluster.file_storage_dir, "**", name, "*.file.disk0"),
                      recursive=True)
    assert len(disks) == 1
    assert os.path.getsize(disks[0]) == 16 * 1024 * 1024

    ganeti_cluster.gnt("instance", "startup", name)
    assert ganeti_cluster.instance_status(name) == "running"

    ganeti_cluster.gnt("instance", "shutdown", name)
    assert ganeti_cluster.instance_status(name) == "ADMIN_down"

    ganeti_cluster.gnt("instance", "remove", "-f", name)
    assert ganeti_cluster.instance_status(name) is None
    assert not os.path.exists(disks[0])


def test_os_fail_flag_fails_create(ganeti_cluster, ganeti_instance_name):
    flag = ganeti_cluster.os_fail_flag("create")
    flag.touch()
    try:
        result = ganeti_cluster.add_instance(ganeti_instance_name, check=False)
    finally:
        flag.unlink()
    assert result.returncode != 0
    assert "snf-test: forced failure of create" in result.stdout + result.stderr
    # Ganeti keeps an instance whose OS create failed (to be reinstalled), stopped
    assert ganeti_cluster.instance_status(ganeti_instance_name) == "ADMIN_down"
