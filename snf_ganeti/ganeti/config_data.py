"""Ganeti 3.0's ``config.data``: cluster, nodes, instances, disks, networks.

Objects are keyed by uuid in the file and refer to each other by uuid; here
they are resolved to names, which is what messages and hooks speak. Ganeti
omits unset attributes when writing, so an absent key and null mean the same.
Instance parameters are the instance's own overrides, not filled with the
cluster defaults; NIC mode/link/vlan are filled, because a NIC's network
configuration is meaningless without them.
"""

from dataclasses import dataclass, field

from snf_ganeti.errors import ConfigDataError
from snf_ganeti.ganeti import _fields as F

_OPT_STR = (str, F.NULL)
# Ganeti's key for the cluster-wide defaults in grouped parameters (PP_DEFAULT).
_DEFAULT_GROUP = "default"


@dataclass(frozen=True)
class Node:
    """A node of the cluster: its addresses and its roles (offline, drained, master candidate)."""

    name: str
    uuid: str
    primary_ip: str | None
    secondary_ip: str | None
    offline: bool
    drained: bool
    master_candidate: bool
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Network:
    """A Ganeti network: its IPv4 and IPv6 subnets and gateways, MAC prefix and tags."""

    name: str
    uuid: str
    subnet: str
    gateway: str | None
    subnet6: str | None
    gateway6: str | None
    mac_prefix: str | None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class NIC:
    """One of an instance's NICs: its network by name, mode/link/vlan filled from the cluster's
    defaults."""

    index: int
    name: str | None
    uuid: str | None
    mac: str
    ip: str | None
    network_uuid: str | None
    network_name: str | None
    mode: str
    link: str
    vlan: str


@dataclass(frozen=True)
class Disk:
    """One of an instance's disks: its position in the instance, size in MiB and device type."""

    index: int
    name: str | None
    uuid: str
    size_mib: int
    dev_type: str
    iv_name: str | None


@dataclass(frozen=True)
class Instance:
    """An instance: its primary node by name, its NICs and disks in order, and its own parameter
    overrides (not filled with the cluster defaults)."""

    name: str
    uuid: str
    primary_node: str
    os: str
    hypervisor: str
    admin_state: str
    tags: tuple[str, ...]
    nics: tuple[NIC, ...]
    disks: tuple[Disk, ...]
    hvparams: dict = field(default_factory=dict)
    beparams: dict = field(default_factory=dict)
    osparams: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterConfig:
    """What snf-ganeti reads of config.data: the cluster, its nodes and instances by name, its
    networks by uuid."""

    cluster_name: str
    master_node: str
    nodes: dict[str, Node]
    instances: dict[str, Instance]
    networks: dict[str, Network]
    serial_no: int | None = None
    # Cluster-wide defaults per hypervisor; instances store only overrides.
    hvparams: dict = field(default_factory=dict)

    def hvparams_for(self, hypervisor):
        return dict(self.hvparams.get(hypervisor) or {})

    def network_by_name(self, name):
        for network in self.networks.values():
            if network.name == name:
                return network
        return None

    def instance_by_uuid(self, uuid):
        for instance in self.instances.values():
            if instance.uuid == uuid:
                return instance
        return None


def read_config_data(path):
    """Parse the config.data at ``path``; unreadable or malformed → ConfigDataError."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ConfigDataError(path, f"cannot read: {err.strerror}") from None
    return parse_config_data(data, str(path))


def parse_config_data(data, source):
    try:
        return _config(F.load(data))
    except F.Invalid as err:
        raise ConfigDataError(source, str(err)) from None


def _config(doc):
    F.check(doc, dict, "top level")
    cluster = F.get(doc, "cluster", dict, "")
    nodes = {uuid: _node(obj, uuid) for uuid, obj in _objects(doc, "nodes").items()}
    networks = {uuid: _network(obj, uuid) for uuid, obj in _objects(doc, "networks").items()}
    disks = _objects(doc, "disks")
    nic_defaults = _nic_defaults(cluster)

    instances = {}
    for uuid, obj in _objects(doc, "instances").items():
        instance = _instance(obj, uuid, nodes, networks, disks, nic_defaults)
        if instance.name in instances:
            raise F.Invalid(f"instances[{uuid}].name", f"duplicate instance name {instance.name!r}")
        instances[instance.name] = instance

    master_uuid = F.get(cluster, "master_node", str, "cluster")
    return ClusterConfig(
        cluster_name=F.get(cluster, "cluster_name", str, "cluster"),
        master_node=_node_name(nodes, master_uuid, "cluster.master_node"),
        nodes={node.name: node for node in nodes.values()},
        instances=instances,
        networks=networks,
        serial_no=F.get(doc, "serial_no", (int, F.NULL), "", None),
        hvparams=F.get(cluster, "hvparams", (dict, F.NULL), "cluster", None) or {},
    )


def _objects(doc, key):
    """A top-level uuid → object section; older files lack some sections."""
    section = F.get(doc, key, (dict, F.NULL), "", None) or {}
    for uuid, obj in section.items():
        F.check(obj, dict, f"{key}[{uuid}]")
    return section


def _tags(obj, where):
    tags = F.get(obj, "tags", (list, F.NULL), where, None) or []
    for i, tag in enumerate(tags):
        F.check(tag, str, F.index_path(F.key_path(where, "tags"), i))
    return tuple(tags)


def _node(obj, uuid):
    where = f"nodes[{uuid}]"
    return Node(
        name=F.get(obj, "name", str, where),
        uuid=uuid,
        primary_ip=F.get(obj, "primary_ip", _OPT_STR, where, None),
        secondary_ip=F.get(obj, "secondary_ip", _OPT_STR, where, None),
        offline=bool(F.get(obj, "offline", (bool, F.NULL), where, False)),
        drained=bool(F.get(obj, "drained", (bool, F.NULL), where, False)),
        master_candidate=bool(F.get(obj, "master_candidate", (bool, F.NULL), where, False)),
        tags=_tags(obj, where),
    )


def _node_name(nodes, uuid, where):
    node = nodes.get(uuid)
    if node is None:
        raise F.Invalid(where, f"unknown node {F.show(uuid)}")
    return node.name


def _network(obj, uuid):
    where = f"networks[{uuid}]"
    return Network(
        name=F.get(obj, "name", str, where),
        uuid=uuid,
        subnet=F.get(obj, "network", str, where),
        gateway=F.get(obj, "gateway", _OPT_STR, where, None),
        subnet6=F.get(obj, "network6", _OPT_STR, where, None),
        gateway6=F.get(obj, "gateway6", _OPT_STR, where, None),
        mac_prefix=F.get(obj, "mac_prefix", _OPT_STR, where, None),
        tags=_tags(obj, where),
    )


def _nic_defaults(cluster):
    nicparams = F.get(cluster, "nicparams", (dict, F.NULL), "cluster", None) or {}
    return F.get(nicparams, _DEFAULT_GROUP, dict, "cluster.nicparams", {})


def _instance(obj, uuid, nodes, networks, disks, nic_defaults):
    where = f"instances[{uuid}]"
    nics = F.get(obj, "nics", (list, F.NULL), where, None) or []
    disk_refs = F.get(obj, "disks", (list, F.NULL), where, None) or []
    return Instance(
        name=F.get(obj, "name", str, where),
        uuid=uuid,
        primary_node=_node_name(nodes, F.get(obj, "primary_node", str, where),
                                F.key_path(where, "primary_node")),
        os=F.get(obj, "os", str, where),
        hypervisor=F.get(obj, "hypervisor", str, where),
        admin_state=F.get(obj, "admin_state", str, where),
        tags=_tags(obj, where),
        nics=tuple(_nic(nic, i, F.index_path(F.key_path(where, "nics"), i), networks, nic_defaults)
                   for i, nic in enumerate(nics)),
        disks=tuple(_disk(ref, i, F.index_path(F.key_path(where, "disks"), i), disks)
                    for i, ref in enumerate(disk_refs)),
        hvparams=_params(obj, "hvparams", where),
        beparams=_params(obj, "beparams", where),
        osparams=_params(obj, "osparams", where),
    )


def _params(obj, key, where):
    return F.get(obj, key, (dict, F.NULL), where, None) or {}


def _nic(obj, index, where, networks, nic_defaults):
    F.check(obj, dict, where)
    network_uuid = F.get(obj, "network", _OPT_STR, where, None) or None
    network_name = None
    if network_uuid is not None:
        if network_uuid not in networks:
            raise F.Invalid(F.key_path(where, "network"), f"unknown network {F.show(network_uuid)}")
        network_name = networks[network_uuid].name
    params = {**nic_defaults, **_params(obj, "nicparams", where)}
    params_where = F.key_path(where, "nicparams")
    return NIC(
        index=index,
        name=F.get(obj, "name", _OPT_STR, where, None),
        uuid=F.get(obj, "uuid", _OPT_STR, where, None),
        mac=F.get(obj, "mac", str, where),
        ip=F.get(obj, "ip", _OPT_STR, where, None),
        network_uuid=network_uuid,
        network_name=network_name,
        mode=_nic_param(params, "mode", params_where),
        link=_nic_param(params, "link", params_where),
        # vlan appeared in Ganeti 2.16; older configs have none.
        vlan=F.get(params, "vlan", str, params_where, ""),
    )


def _nic_param(params, key, where):
    if key not in params:
        raise F.Invalid(F.key_path(where, key), "missing, and no cluster default either")
    return F.get(params, key, str, where)


def _disk(ref, index, where, disks):
    # Ganeti 3.0 lists disk uuids pointing into the top-level "disks"
    # section; Ganeti 2.x embedded the disk objects in the instance.
    if isinstance(ref, str):
        if ref not in disks:
            raise F.Invalid(where, f"unknown disk {F.show(ref)}")
        uuid, obj, where = ref, disks[ref], f"disks[{ref}]"
    else:
        obj = F.check(ref, (str, dict), where)
        uuid = F.get(obj, "uuid", str, where)
    return Disk(
        index=index,
        name=F.get(obj, "name", _OPT_STR, where, None),
        uuid=uuid,
        size_mib=F.get(obj, "size", int, where),
        dev_type=F.get(obj, "dev_type", str, where),
        iv_name=F.get(obj, "iv_name", _OPT_STR, where, None),
    )

