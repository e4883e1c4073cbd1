import dataclasses
import json
import os

import pytest

from snf_ganeti import messages
from snf_ganeti.eventd import plan
from snf_ganeti.eventd.instances import instance_info
from snf_ganeti.ganeti import config_data, jobs

pytestmark = pytest.mark.unit
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "ganeti")
CLUSTER = "gntcluster.example.test"


def versions(label):
    with open(os.path.join(DATA, "manifest.json")) as stream:
        (entry,) = [j for j in json.load(stream)["jobs"] if j["label"] == label]
    return [jobs.read_job(os.path.join(DATA, f)) for f in entry["files"]]


@pytest.fixture(scope="module")
def sample_config():
    return config_data.read_config_data(os.path.join(DATA, "config.data"))


def lookup_from(config):
    def lookup(name):
        instance = config.instances.get(name)
        return instance and instance_info(instance, config.hvparams_for(instance.hypervisor))
    return lookup


def replay(job_versions, lookup=lambda name: None, published=()):
    sent = []
    for job in job_versions:
        out, published = plan.plan_job(job, published, CLUSTER, lookup, now=0.0)
        sent.extend(out)
    return sent, published


def statuses(sent):
    return [m.body["status"] for m in sent]


def test_every_version_in_order_gives_one_message_per_status(sample_config):
    sent, record = replay(versions("instance-create"), lookup_from(sample_config))
    assert statuses(sent) == ["queued", "waiting", "running", "success"]
    assert record == ("success",)
    for message in sent:
        messages.validate(message.body)
        assert message.routing_key == "ganeti.snf.event.op"
        assert message.body["instance"] == "snf-sample-1.example.test"
        assert set(message.body["job_fields"]) == {"nics", "disks", "hvparams", "beparams"}
    assert len({m.message_id for m in sent}) == 4
    success = sent[-1].body
    assert success["result"] == ["gnt1.example.test"]
    assert success["tags"] == ["synnefo:network:0:protected"]
    nics = success["instance_nics"]
    instance = sample_config.instances["snf-sample-1.example.test"]
    assert [n["mac"] for n in nics] == [n.mac for n in instance.nics]
    assert nics[0]["firewall"] == "protected"
    assert nics[1]["firewall"] == "protected"  # config.data was captured after tags-set
    assert nics[1]["network"] == "snf-net-1" and nics[1]["ip"] == "192.0.2.10"
    assert success["instance_disks"][0]["size"] == 16
    assert success["instance_hvparams"]["cdrom_image_path"] == ""
    assert "instance_nics" not in sent[2].body  # only on success


def test_event_times_follow_synnefo_rules():
    job_versions = versions("instance-startup")
    final = job_versions[-1]
    sent, _ = replay(job_versions)
    op = final.ops[0]
    assert [tuple(m.body["event_time"]) for m in sent] == [
        final.received_timestamp, op.start_timestamp, op.exec_timestamp, op.end_timestamp]
    assert [m.body["event_time"] for m in sent] == sorted(m.body["event_time"] for m in sent)


def test_missed_versions_are_recovered_from_timestamps():
    job_versions = versions("instance-startup")
    everything, _ = replay(job_versions)
    only_last, _ = replay(job_versions[-1:])
    assert [m.message_id for m in only_last] == [m.message_id for m in everything]
    assert [m.body["event_time"] for m in only_last] == [m.body["event_time"] for m in everything]
    assert only_last[1].body["result"] is None and only_last[-1].body["status"] == "success"


def test_rewrites_never_repeat_a_status():
    job_versions = versions("instance-create")
    twice = [v for v in job_versions for _ in range(2)]
    sent, _ = replay(twice)
    assert statuses(sent) == ["queued", "waiting", "running", "success"]
    again, _ = replay(job_versions, published=("success",))
    assert again == []


def test_failed_create_carries_the_whole_input():
    sent, _ = replay(versions("instance-create-error-os-create"))
    assert statuses(sent) == ["queued", "waiting", "running", "error"]
    error = sent[-1].body
    assert error["job_fields"]["OP_ID"] == "OP_INSTANCE_CREATE"
    assert error["job_fields"]["instance_name"] == error["instance"]
    assert error["result"][0] == "OpExecError"
    assert "instance_nics" not in error
    messages.validate(error)


def test_network_ops():
    for label, operation in (("network-add", "OP_NETWORK_ADD"),
                             ("network-connect", "OP_NETWORK_CONNECT")):
        sent, _ = replay(versions(label))
        assert statuses(sent) == ["queued", "waiting", "running", "success"]
        body = sent[-1].body
        assert sent[-1].routing_key == "ganeti.snf.event.network"
        assert body["type"] == "ganeti-network-status" and body["operation"] == operation
        assert body["network"] == "snf-net-1"
        messages.validate(body)
    add = replay(versions("network-add"))[0][-1].body
    assert add["job_fields"]["subnet"] == "192.0.2.0/24"
    assert add["job_fields"]["gateway"] == "192.0.2.1"


def test_instance_tag_ops_publish_final_status_only():
    sent, _ = replay(versions("tags-set"))
    assert statuses(sent) == ["success"]
    body = sent[0].body
    assert body["operation"] == "OP_TAGS_SET" and body["instance"] == "snf-sample-1.example.test"
    assert "synnefo:network:1:protected" in body["tags"]
    assert body["job_fields"] == {"dry_run": None}
    messages.validate(body)


def make_op(op_id, status, index=0, **input_fields):
    ts = {"start_timestamp": (10, 0), "exec_timestamp": (11, 0), "end_timestamp": (12, 0)}
    if status == "queued":
        ts = dict.fromkeys(ts)
    elif status in ("waiting", "canceling"):
        ts.update(exec_timestamp=None, end_timestamp=None)
    elif status == "canceled":
        ts.update(exec_timestamp=None)
    return jobs.OpCode(index=index, op_id=op_id, input={"OP_ID": op_id, **input_fields},
                       status=status, result=None, log=(), **ts)


def make_job(*ops, job_id=5):
    return jobs.Job(id=job_id, ops=tuple(ops), received_timestamp=(9, 0), start_timestamp=None,
                    end_timestamp=(13, 0))


def test_canceled_status_is_spelled_as_ganeti_does():
    job = make_job(make_op("OP_INSTANCE_SET_PARAMS", "canceled", instance_name="snf-1"))
    info = plan.InstanceInfo(nics=[], disks=[], hvparams={"boot_order": None,
                                                         "cdrom_image_path": ""})
    sent, _ = replay([job], lookup=lambda name: info)
    assert statuses(sent) == ["queued", "waiting", "canceled"]
    assert sent[-1].body["instance_nics"] == []  # lookup fields on canceled set-params too
    tag = make_job(make_op("OP_TAGS_DEL", "canceled", kind="instance", name="snf-1", tags=["a"]))
    assert statuses(replay([tag])[0]) == ["canceled"]


def test_dispatcher_heartbeat_answered_even_when_waiting_was_not_seen():
    op = make_op("OP_TAGS_SET", "success", kind="cluster", tags=["snf:eventd:heartbeat:h:1"],
                 dry_run=True)
    sent, _ = replay([make_job(op)])
    assert [m.body["type"] for m in sent] == ["eventd-heartbeat"]
    assert sent[0].routing_key == "eventd.heartbeat" and sent[0].body["status"] == "waiting"
    messages.validate(sent[0].body)


def test_ops_after_a_failed_op_go_from_queued_to_error():
    failed = make_op("OP_INSTANCE_STARTUP", "error", index=0, instance_name="snf-1")
    never_ran = dataclasses.replace(make_op("OP_INSTANCE_REBOOT", "queued", index=1,
                                            instance_name="snf-1"), status="error")
    sent, _ = replay([make_job(failed, never_ran)])
    assert [(m.body["operation"], m.body["status"]) for m in sent] == [
        ("OP_INSTANCE_STARTUP", "queued"), ("OP_INSTANCE_STARTUP", "waiting"),
        ("OP_INSTANCE_STARTUP", "running"), ("OP_INSTANCE_STARTUP", "error"),
        ("OP_INSTANCE_REBOOT", "queued"), ("OP_INSTANCE_REBOOT", "error")]
    assert sent[-1].body["event_time"] == [13, 0]  # no own end_timestamp: the job's


@pytest.mark.parametrize("op", [
    make_op("OP_NODE_SET_PARAMS", "success", node_name="n1"),
    make_op("OP_INSTANCE_MULTI_ALLOC", "success", instances=[{"instance_name": "snf-1"}]),
    make_op("OP_INSTANCE_QUERY_DATA", "success", instances=["a", "b"]),
    make_op("OP_NETWORK_ADD", "success"),
    make_op("OP_CLUSTER_VERIFY", "success"),
    make_op("OP_TAGS_SET", "success", kind="node", name="n1", tags=["x"]),
    make_op("OP_TAGS_SET", "waiting", kind="cluster", tags=["snf:eventd:heartbeat:x"], dry_run=False),
], ids=lambda op: op.op_id)
def test_ops_the_frontend_does_not_want(op):
    assert replay([make_job(op)])[0] == []


def test_query_data_for_one_instance_and_cluster_set_params():
    sent, _ = replay([make_job(make_op("OP_INSTANCE_QUERY_DATA", "success", instances=["snf-3"]))])
    assert sent[-1].body["instance"] == "snf-3"
    sent, _ = replay([make_job(make_op("OP_CLUSTER_SET_PARAMS", "success"))])
    assert sent[-1].routing_key == "ganeti.event.cluster"
    messages.validate(sent[-1].body)
