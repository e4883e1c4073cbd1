"""ganeti-network-status: a network opcode changed status."""

from snf_ganeti.messages import Message, MessageType, prefix_of
from snf_ganeti.messages.common import OPCODE_FIELDS, OPCODE_REQUIRED, opcode_body, schema

NAME = "ganeti-network-status"
JOB_FIELD_KEYS = {"subnet": "network", "gateway": "gateway", "add_reserved_ips": "add_reserved_ips",
                  "remove_reserved_ips": "remove_reserved_ips", "group_name": "group_name"}

TYPE = MessageType(
    name=NAME,
    routing_key="ganeti.<prefix>.event.network",
    description=("One message per status of each `OP_NETWORK_*` opcode (add, remove, set-params, "
                 "connect, disconnect). `job_fields` has exactly subnet, gateway, add_reserved_ips, "
                 "remove_reserved_ips and group_name from the opcode input (null when absent)."),
    schema=schema([NAME], {
        **OPCODE_FIELDS,
        "network": {"type": "string", "minLength": 1},
        "job_fields": {"type": "object", "required": sorted(JOB_FIELD_KEYS),
                       "properties": {k: {} for k in sorted(JOB_FIELD_KEYS)},
                       "additionalProperties": False},
    }, OPCODE_REQUIRED + ["network", "job_fields"]),
    example={"type": NAME, "network": "snf-net-5", "operation": "OP_NETWORK_CONNECT",
             "status": "success", "jobId": 2001, "event_time": [1700000200, 123456],
             "cluster": "gntcluster.example.test", "logmsg": None, "result": None,
             "job_fields": {"subnet": None, "gateway": None, "add_reserved_ips": None,
                            "remove_reserved_ips": None, "group_name": "default"}},
)


def build(op, cluster, network, op_input):
    body = opcode_body(NAME, op, cluster)
    body.update(network=network,
                job_fields={k: op_input.get(src) for k, src in JOB_FIELD_KEYS.items()})
    return Message(f"ganeti.{prefix_of(network)}.event.network", body, op.message_id(cluster))
