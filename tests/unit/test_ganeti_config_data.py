"""config.data: names resolved from uuids, NIC parameters filled, malformed files refused."""

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snf_ganeti.errors import ConfigDataError
from snf_ganeti.ganeti.config_data import (NIC, ClusterConfig, Disk, Network, parse_config_data,
                                           read_config_data)
from tests.support.jsonfuzz import JSON_VALUES, mutated, paths as _paths

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "ganeti" / "config.data"

NODE1, NODE2 = "node-uuid-1", "node-uuid-2"
NET = "net-uuid-1"
INST = "inst-uuid-1"

# Shaped like the Ganeti 3.0.2 sample: unset attributes are omitted, disks are
# top-level objects the instance lists by uuid.
CONFIG = {
    "version": 3000000,
    "serial_no": 46,
    "cluster": {
        "cluster_name": "gntcluster.example.test",
        "master_node": NODE1,
        "nicparams": {"default": {"mode": "bridged", "link": "gntbr0", "vlan": ""}},
        "tags": [],
    },
    "nodes": {
        NODE1: {"name": "gnt1.example.test", "primary_ip": "198.51.100.1",
                "secondary_ip": "198.51.100.1", "master_candidate": True, "offline": False,
                "drained": False, "uuid": NODE1, "tags": []},
        NODE2: {"name": "gnt2.example.test", "primary_ip": "198.51.100.2",
                "master_candidate": False, "offline": True, "drained": False, "uuid": NODE2},
    },
    "networks": {
        NET: {"name": "snf-net-1", "mac_prefix": "aa:00:01", "network": "192.0.2.0/24",
              "gateway": "192.0.2.1", "uuid": NET, "tags": ["nfdhcpd"]},
    },
    "disks": {
        "disk-b": {"dev_type": "file", "iv_name": "disk/1", "size": 2048, "mode": "rw",
                   "uuid": "disk-b", "name": "data"},
        "disk-a": {"dev_type": "file", "iv_name": "disk/0", "size": 16, "mode": "rw",
                   "uuid": "disk-a"},
    },
    "instances": {
        INST: {
            "name": "snf-42.example.test", "primary_node": NODE2, "os": "snf-image+default",
            "hypervisor": "kvm", "hvparams": {"boot_order": "disk"},
            "beparams": {"minmem": 128, "maxmem": 128}, "osparams": {"img_id": "debian"},
            "osparams_private": {"img_passwd": "secret"},
            "admin_state": "up",
            "nics": [
                {"mac": "aa:00:00:e3:52:af", "nicparams": {"mode": "bridged", "link": "gntbr0"},
                 "uuid": "nic-uuid-0"},
                {"mac": "aa:00:01:ea:e3:2f", "ip": "192.0.2.10", "network": NET,
                 "nicparams": {"mode": "routed", "link": "rt1", "vlan": "100"},
                 "uuid": "nic-uuid-1", "name": "snf-nic-7"},
                {"mac": "aa:00:00:00:00:03", "uuid": "nic-uuid-2"},
            ],
            "disks": ["disk-a", "disk-b"],
            "uuid": INST,
            "tags": ["synnefo:network:snf-nic-7:protected"],
        },
    },
    "nodegroups": {}, "filters": {},
}


def _parse(doc=CONFIG):
    return parse_config_data(json.dumps(doc), "/var/lib/ganeti/config.data")


def test_cluster_and_nodes():
    config = _parse()
    assert isinstance(config, ClusterConfig)
    assert config.cluster_name == "gntcluster.example.test"
    assert config.master_node == "gnt1.example.test"
    assert config.serial_no == 46
    assert set(config.nodes) == {"gnt1.example.test", "gnt2.example.test"}
    node2 = config.nodes["gnt2.example.test"]
    assert node2.uuid == NODE2 and node2.offline and not node2.master_candidate
    assert node2.secondary_ip is None


def test_instance_fields_and_primary_node_name():
    instance = _parse().instances["snf-42.example.test"]
    assert instance.uuid == INST
    assert instance.primary_node == "gnt2.example.test"
    assert (instance.os, instance.hypervisor, instance.admin_state) == ("snf-image+default", "kvm", "up")
    assert instance.tags == ("synnefo:network:snf-nic-7:protected",)
    assert instance.hvparams == {"boot_order": "disk"}
    assert instance.beparams == {"minmem": 128, "maxmem": 128}
    assert instance.osparams == {"img_id": "debian"}
    assert not hasattr(instance, "osparams_private")  # secrets stay out


def test_nics_resolve_networks_and_fill_cluster_defaults():
    nics = _parse().instances["snf-42.example.test"].nics
    assert nics[0] == NIC(index=0, name=None, uuid="nic-uuid-0", mac="aa:00:00:e3:52:af", ip=None,
                          network_uuid=None, network_name=None, mode="bridged", link="gntbr0",
                          vlan="")  # vlan absent from the NIC: the cluster default
    assert nics[1] == NIC(index=1, name="snf-nic-7", uuid="nic-uuid-1", mac="aa:00:01:ea:e3:2f",
                          ip="192.0.2.10", network_uuid=NET, network_name="snf-net-1",
                          mode="routed", link="rt1", vlan="100")
    # No nicparams at all: everything from the cluster defaults.
    assert (nics[2].index, nics[2].mode, nics[2].link, nics[2].vlan) == (2, "bridged", "gntbr0", "")


def test_disks_in_the_instances_order():
    disks = _parse().instances["snf-42.example.test"].disks
    assert disks == (
        Disk(index=0, name=None, uuid="disk-a", size_mib=16, dev_type="file", iv_name="disk/0"),
        Disk(index=1, name="data", uuid="disk-b", size_mib=2048, dev_type="file", iv_name="disk/1"),
    )


def test_ganeti_2_inline_disks():
    doc = copy.deepcopy(CONFIG)
    del doc["disks"]
    doc["instances"][INST]["disks"] = [
        {"dev_type": "plain", "iv_name": "disk/0", "size": 1024, "uuid": "d0"}]
    (disk,) = _parse(doc).instances["snf-42.example.test"].disks
    assert (disk.uuid, disk.size_mib, disk.dev_type) == ("d0", 1024, "plain")


def test_networks_by_uuid_and_by_name():
    config = _parse()
    assert config.networks == {NET: Network(
        name="snf-net-1", uuid=NET, subnet="192.0.2.0/24", gateway="192.0.2.1", subnet6=None,
        gateway6=None, mac_prefix="aa:00:01", tags=("nfdhcpd",))}
    assert config.network_by_name("snf-net-1").uuid == NET
    assert config.network_by_name("nope") is None
    assert config.instance_by_uuid(INST).name == "snf-42.example.test"
    assert config.instance_by_uuid("nope") is None


def test_empty_cluster():
    doc = copy.deepcopy(CONFIG)
    for section in ("instances", "networks", "disks"):
        del doc[section]
    config = _parse(doc)
    assert config.instances == {} and config.networks == {}


def test_read_config_data(tmp_path):
    path = tmp_path / "config.data"
    path.write_text(json.dumps(CONFIG))
    assert read_config_data(path) == _parse()


# --- malformed -----------------------------------------------------------------------------

def _mutated(*path_and_value, delete=False):
    *path, value = path_and_value
    return json.dumps(mutated(CONFIG, path, value, delete))


I = ("instances", INST)
MALFORMED = [
    ("", "empty file"),
    ("{", "invalid JSON"),
    (json.dumps(CONFIG)[:-10], "invalid JSON (truncated?)"),
    (b"\x80", "not UTF-8"),
    ("[]", "top level: expected object, got array"),
    (_mutated("cluster", None, delete=True), "cluster: missing"),
    (_mutated("cluster", "cluster_name", None, delete=True), "cluster.cluster_name: missing"),
    (_mutated("cluster", "master_node", "ghost"), "cluster.master_node: unknown node 'ghost'"),
    (_mutated("cluster", "master_node", 1), "cluster.master_node: expected string, got integer"),
    (_mutated("cluster", "nicparams", "default", []), "cluster.nicparams.default: expected object"),
    (_mutated("nodes", []), "nodes: expected object or null, got array"),
    (_mutated("nodes", NODE1, "x"), f"nodes[{NODE1}]: expected object, got string"),
    (_mutated("nodes", NODE1, "name", 7), f"nodes[{NODE1}].name: expected string, got integer"),
    (_mutated("nodes", NODE1, "offline", "no"), f"nodes[{NODE1}].offline: expected boolean or null"),
    (_mutated("instances", INST, []), f"instances[{INST}]: expected object, got array"),
    (_mutated(*I, "name", None, delete=True), f"instances[{INST}].name: missing"),
    (_mutated(*I, "primary_node", "ghost"), f"instances[{INST}].primary_node: unknown node 'ghost'"),
    (_mutated(*I, "os", None), f"instances[{INST}].os: expected string, got null"),
    (_mutated(*I, "admin_state", True), f"instances[{INST}].admin_state: expected string, got boolean"),
    (_mutated(*I, "tags", "a,b"), f"instances[{INST}].tags: expected array or null, got string"),
    (_mutated(*I, "tags", [1]), f"instances[{INST}].tags[0]: expected string, got integer"),
    (_mutated(*I, "hvparams", []), f"instances[{INST}].hvparams: expected object or null, got array"),
    (_mutated(*I, "nics", {}), f"instances[{INST}].nics: expected array or null, got object"),
    (_mutated(*I, "nics", [None]), f"instances[{INST}].nics[0]: expected object, got null"),
    (_mutated(*I, "nics", 1, "mac", None, delete=True), f"instances[{INST}].nics[1].mac: missing"),
    (_mutated(*I, "nics", 1, "network", "ghost"),
     f"instances[{INST}].nics[1].network: unknown network 'ghost'"),
    (_mutated(*I, "nics", 1, "ip", 10), f"instances[{INST}].nics[1].ip: expected string or null"),
    (_mutated(*I, "nics", 1, "nicparams", "vlan", 100),
     f"instances[{INST}].nics[1].nicparams.vlan: expected string, got integer"),
    (_mutated("cluster", "nicparams", None, delete=True),
     f"instances[{INST}].nics[2].nicparams.mode: missing, and no cluster default either"),
    (_mutated(*I, "disks", ["ghost"]), f"instances[{INST}].disks[0]: unknown disk 'ghost'"),
    (_mutated(*I, "disks", [3]), f"instances[{INST}].disks[0]: expected string or object, got integer"),
    (_mutated("disks", "disk-a", "size", "16M"), "disks[disk-a].size: expected integer, got string"),
    (_mutated("disks", "disk-a", "dev_type", None, delete=True), "disks[disk-a].dev_type: missing"),
    (_mutated("networks", NET, "network", None), f"networks[{NET}].network: expected string, got null"),
    (_mutated("networks", NET, "name", None, delete=True), f"networks[{NET}].name: missing"),
]


def _duplicate_names():
    doc = copy.deepcopy(CONFIG)
    doc["instances"]["inst-uuid-2"] = dict(doc["instances"][INST], uuid="inst-uuid-2")
    return json.dumps(doc)


MALFORMED.append((_duplicate_names(), "duplicate instance name 'snf-42.example.test'"))


@pytest.mark.parametrize("data, problem", MALFORMED, ids=[p for _, p in MALFORMED])
def test_malformed_config_data(data, problem):
    with pytest.raises(ConfigDataError) as info:
        parse_config_data(data, "/var/lib/ganeti/config.data")
    message = str(info.value)
    assert message.startswith("/var/lib/ganeti/config.data: ")
    assert problem in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    path = tmp_path / "config.data"
    with pytest.raises(ConfigDataError, match=rf"^{path}: cannot read: No such file"):
        read_config_data(path)




@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([p for p in _paths(CONFIG) if p]), JSON_VALUES, st.booleans())
def test_any_value_anywhere_gives_a_config_or_config_data_error(path, value, delete):
    data = _mutated(*path, value, delete=delete)
    try:
        parse_config_data(data, "config.data")
    except ConfigDataError as err:
        assert "\n" not in str(err)


# --- the real sample (tests/data/ganeti/config.data, Ganeti 3.0.2) -------------------------

@pytest.fixture
def real():
    if not SAMPLE.is_file():
        pytest.skip(f"no captured config.data at {SAMPLE}")
    return read_config_data(SAMPLE)


def test_real_sample_cluster(real):
    assert real.cluster_name == "gntcluster.example.test"
    assert real.master_node == "gnt1.example.test"
    assert list(real.nodes) == ["gnt1.example.test"]
    assert real.nodes["gnt1.example.test"].primary_ip == "198.51.100.1"


def test_real_sample_instance(real):
    instance = real.instances["snf-sample-1.example.test"]
    assert instance.primary_node == "gnt1.example.test"
    assert (instance.os, instance.hypervisor, instance.admin_state) == ("snf-test+default", "fake", "up")
    assert set(instance.tags) == {"snf:sample", "synnefo:network:0:protected",
                                  "synnefo:network:1:protected"}
    assert instance.beparams == {"minmem": 128, "maxmem": 128}
    assert instance.osparams == {"marker": "hello"}
    (disk,) = instance.disks
    assert (disk.index, disk.size_mib, disk.dev_type, disk.iv_name, disk.name) == (
        0, 16, "file", "disk/0", None)


def test_real_sample_nics(real):
    nic0, nic1 = real.instances["snf-sample-1.example.test"].nics
    # --net 0:mode=bridged,link=gntbr0: no vlan in the NIC, no name, no ip, no network.
    assert (nic0.index, nic0.mode, nic0.link, nic0.vlan) == (0, "bridged", "gntbr0", "")
    assert nic0.ip is nic0.network_uuid is nic0.network_name is nic0.name is None
    assert nic0.mac.startswith("aa:00:00:")
    # --net 1:network=snf-net-1,ip=192.0.2.10: parameters inherited from the group's netparams.
    assert (nic1.index, nic1.ip, nic1.network_name) == (1, "192.0.2.10", "snf-net-1")
    assert real.networks[nic1.network_uuid].name == "snf-net-1"
    assert (nic1.mode, nic1.link, nic1.vlan) == ("bridged", "gntbr0", "")
    assert nic1.mac.startswith("aa:00:01:")  # the network's mac_prefix


def test_real_sample_network(real):
    network = real.network_by_name("snf-net-1")
    assert (network.subnet, network.gateway, network.mac_prefix) == (
        "192.0.2.0/24", "192.0.2.1", "aa:00:01")
    assert network.subnet6 is None and network.gateway6 is None and network.tags == ()


def test_real_sample_truncated():
    if not SAMPLE.is_file():
        pytest.skip(f"no captured config.data at {SAMPLE}")
    data = SAMPLE.read_bytes()
    for cut in range(0, len(data.rstrip()), 97):
        with pytest.raises(ConfigDataError):
            parse_config_data(data[:cut], str(SAMPLE))
