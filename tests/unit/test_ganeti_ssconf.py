"""ssconf files: values, lists, every failure naming the file, and no caching."""

import shutil
from pathlib import Path

import pytest

from snf_ganeti.errors import SsconfError
from snf_ganeti.ganeti.ssconf import Ssconf

pytestmark = pytest.mark.unit

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "ganeti" / "ssconf"


def _write(data_dir, key, content):
    path = data_dir / f"ssconf_{key}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.fixture
def ssconf(tmp_path):
    _write(tmp_path, "master_node", "gnt1.example.test\n")
    _write(tmp_path, "cluster_name", "gntcluster.example.test\n")
    _write(tmp_path, "node_list", "gnt1.example.test\ngnt2.example.test\n")
    return Ssconf(tmp_path)


def test_values_are_stripped(ssconf):
    assert ssconf.master_node() == "gnt1.example.test"
    assert ssconf.cluster_name() == "gntcluster.example.test"
    assert ssconf.node_list() == ("gnt1.example.test", "gnt2.example.test")
    assert ssconf.get("master_node") == "gnt1.example.test"


def test_surrounding_whitespace_and_blank_lines(tmp_path):
    _write(tmp_path, "master_node", "  gnt1.example.test \r\n\n")
    _write(tmp_path, "node_list", "\n gnt1.example.test \n\n  gnt2.example.test\n")
    ssconf = Ssconf(tmp_path)
    assert ssconf.master_node() == "gnt1.example.test"
    assert ssconf.node_list() == ("gnt1.example.test", "gnt2.example.test")


def test_every_call_reads_the_file_again(ssconf, tmp_path):
    # The master can fail over while we run; a cached name would hide it.
    assert ssconf.master_node() == "gnt1.example.test"
    new = _write(tmp_path, "master_node.new", "gnt2.example.test\n")
    new.replace(tmp_path / "ssconf_master_node")  # Ganeti replaces ssconf files by rename
    assert ssconf.master_node() == "gnt2.example.test"
    (tmp_path / "ssconf_master_node").write_text("gnt3.example.test")
    assert ssconf.master_node() == "gnt3.example.test"


def test_list_keys_may_be_empty(tmp_path):
    # Ganeti writes an empty ssconf_instance_list when there are no instances.
    _write(tmp_path, "instance_list", "")
    assert Ssconf(tmp_path).get_lines("instance_list") == ()


@pytest.mark.parametrize("call, key, content, problem", [
    ("master_node", "master_node", None, "missing"),
    ("cluster_name", "cluster_name", None, "missing"),
    ("node_list", "node_list", None, "missing"),
    ("master_node", "master_node", "", "empty"),
    ("master_node", "master_node", " \n\n", "empty"),
    ("cluster_name", "cluster_name", "\n", "empty"),
    ("node_list", "node_list", "\n\n", "empty"),
    ("master_node", "master_node", "gnt1\ngnt2\n", "expected one line, found several"),
    ("master_node", "master_node", b"gnt1\xff\n", "not UTF-8"),
    ("node_list", "node_list", b"x" * (128 * 1024 + 1), "larger than 131072 bytes"),
])
def test_failures_name_the_file(tmp_path, call, key, content, problem):
    if content is not None:
        _write(tmp_path, key, content)
    with pytest.raises(SsconfError) as info:
        getattr(Ssconf(tmp_path), call)()
    path = str(tmp_path / f"ssconf_{key}")
    assert str(info.value).startswith(f"{path}: ")
    assert problem in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.source == path


def test_generic_get_fails_the_same_way(tmp_path):
    with pytest.raises(SsconfError, match=r"ssconf_master_ip: missing"):
        Ssconf(tmp_path).get("master_ip")


def test_unreadable_file(tmp_path):
    (tmp_path / "ssconf_master_node").mkdir()  # reading a directory fails even as root
    with pytest.raises(SsconfError, match=r"ssconf_master_node: cannot read"):
        Ssconf(tmp_path).master_node()


@pytest.mark.parametrize("key", ["../config.data", "master node", "", "MASTER_NODE", "a/b"])
def test_keys_cannot_escape_the_data_dir(tmp_path, key):
    with pytest.raises(ValueError):
        Ssconf(tmp_path).get(key)


def test_default_data_dir_is_ganetis():
    assert Ssconf().path("master_node") == "/var/lib/ganeti/ssconf_master_node"


# --- real samples (tests/data/ganeti/ssconf, captured from Ganeti 3.0.2) -----------------

@pytest.fixture
def real():
    if not (SAMPLES / "ssconf_master_node").is_file():
        pytest.skip(f"no captured ssconf samples in {SAMPLES}")
    return Ssconf(SAMPLES)


def test_real_sample(real):
    assert real.master_node() == "gnt1.example.test"
    assert real.cluster_name() == "gntcluster.example.test"
    assert real.node_list() == ("gnt1.example.test",)
    assert real.get("release_version") == "3.0.2"
    assert real.get_lines("hypervisor_list") == ("fake", "kvm")
    assert real.get_lines("instance_list") == ("snf-sample-1.example.test",)
    # One "<uuid> <name>" line per network.
    (network,) = real.get_lines("networks")
    assert network.split()[1] == "snf-net-1"


def test_real_sample_empty_list_files(real):
    # Ganeti writes empty files for empty lists.
    assert (SAMPLES / "ssconf_offline_nodes").read_bytes() == b""
    assert real.get_lines("offline_nodes") == ()
    with pytest.raises(SsconfError, match="ssconf_offline_nodes: empty"):
        real.get("offline_nodes")


def test_real_sample_after_master_failover(real, tmp_path):
    shutil.copytree(SAMPLES, tmp_path, dirs_exist_ok=True)
    ssconf = Ssconf(tmp_path)
    assert ssconf.master_node() == "gnt1.example.test"
    (tmp_path / "ssconf_master_node").write_text("gnt2.example.test\n")
    assert ssconf.master_node() == "gnt2.example.test"
