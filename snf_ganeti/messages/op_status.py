"""ganeti-op-status: an instance opcode (or instance tag opcode) changed status."""

from snf_ganeti.messages import Message, MessageType, prefix_of
from snf_ganeti.messages.common import (MAC, NULLABLE_STRING, OPCODE_FIELDS, OPCODE_REQUIRED,
                                        opcode_body, schema)

NAME = "ganeti-op-status"
_NIC = {"type": "object", "properties": {
    "name": NULLABLE_STRING, "network": NULLABLE_STRING, "ip": NULLABLE_STRING, "mac": MAC,
    "mode": NULLABLE_STRING, "link": NULLABLE_STRING, "uuid": NULLABLE_STRING,
    "firewall": {"enum": ["protected", "limited", "unprotected"]}}}
_DISK = {"type": "object", "properties": {
    "name": NULLABLE_STRING, "size": {"type": "integer", "minimum": 0, "description": "MiB"},
    "uuid": NULLABLE_STRING, "index": {"type": "integer"}}, "required": ["size"]}

TYPE = MessageType(
    name=NAME,
    routing_key="ganeti.<prefix>.event.op",
    description=(
        "One message per status (queued, waiting, running, success, error, canceled) of each "
        "instance opcode, and of instance tag opcodes (`OP_TAGS_SET`/`OP_TAGS_DEL`, final "
        "statuses). `instance_nics`, `instance_disks` and `instance_hvparams` come from Ganeti's "
        "config.data when create or startup succeeded, and when set-params or grow-disk "
        "finished; `firewall` comes from the instance tag `synnefo:network:<nic>:<profile>`. "
        "`job_fields` carries nics, disks, hvparams and beparams of create and set-params, the "
        "whole opcode input of a failed create (so the frontend can resubmit it), and `dry_run` "
        "of tag opcodes."),
    schema=schema([NAME], {
        **OPCODE_FIELDS,
        "instance": {"type": "string", "minLength": 1},
        "job_fields": {"type": "object"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "instance_nics": {"type": "array", "items": _NIC},
        "instance_disks": {"type": "array", "items": _DISK},
        "instance_hvparams": {"type": "object", "properties": {
            "boot_order": NULLABLE_STRING, "cdrom_image_path": {"type": "string"}}},
    }, OPCODE_REQUIRED + ["instance", "job_fields"]),
    example={
        "type": NAME, "instance": "snf-42", "operation": "OP_INSTANCE_STARTUP",
        "status": "success", "jobId": 1234, "event_time": [1700000002, 400000],
        "cluster": "gntcluster.example.test", "logmsg": "* starting instance...", "result": None,
        "job_fields": {}, "tags": [],
        "instance_nics": [{"name": "snf-nic-7", "network": "snf-net-1", "ip": "192.0.2.10",
                           "mac": "aa:00:00:12:34:56", "mode": "routed", "link": "rt1",
                           "uuid": "5f0c2d2e-1111-4c1e-9f00-000000000001", "firewall": "protected"}],
        "instance_disks": [{"name": "snf-vol-9", "size": 20480,
                            "uuid": "9b1e0d2e-2222-4c1e-9f00-000000000002"}],
        "instance_hvparams": {"boot_order": "disk", "cdrom_image_path": ""}},
)


def build(op, cluster, instance, job_fields, tags=(), instance_nics=None, instance_disks=None,
          instance_hvparams=None):
    body = opcode_body(NAME, op, cluster)
    body.update(instance=instance, job_fields=job_fields, tags=list(tags))
    if instance_nics is not None:
        body.update(instance_nics=instance_nics, instance_disks=instance_disks or [],
                    instance_hvparams=instance_hvparams or {})
    return Message(f"ganeti.{prefix_of(instance)}.event.op", body, op.message_id(cluster))
