"""eventd-heartbeat: eventd is alive (answer to the dispatcher's status check, or timed)."""

from snf_ganeti.messages import Message, MessageType, event_time
from snf_ganeti.messages.common import EVENT_TIME, OPCODE_FIELDS, opcode_body, schema

NAME = "eventd-heartbeat"

TYPE = MessageType(
    name=NAME,
    routing_key="eventd.heartbeat",
    description=("Sent when eventd sees the dispatcher's dry-run `OP_TAGS_SET` of a cluster tag "
                 "`snf:eventd:heartbeat:...` waiting (Synnefo's `snf-dispatcher --status-check`), "
                 "and every `eventd.heartbeat_interval` seconds. The consumer reads only `cluster`; "
                 "timed heartbeats carry `node` and no opcode fields."),
    schema=schema([NAME], {**OPCODE_FIELDS, "event_time": EVENT_TIME, "node": {"type": "string"}},
                  ["cluster", "event_time"]),
    example={"type": NAME, "cluster": "gntcluster.example.test", "operation": "OP_TAGS_SET",
             "status": "waiting", "jobId": 3001, "event_time": [1700000400, 10], "logmsg": None,
             "result": None},
)


def build_for_op(op, cluster):
    return Message("eventd.heartbeat", opcode_body(NAME, op, cluster), op.message_id(cluster))


def build_timed(cluster, node, now):
    body = {"type": NAME, "cluster": cluster, "node": node, "event_time": event_time(now)}
    return Message("eventd.heartbeat", body, f"{cluster}/heartbeat/{node}/{now:.6f}")
