"""ganeti-cluster-status: OP_CLUSTER_SET_PARAMS changed status."""

from snf_ganeti.messages import Message, MessageType
from snf_ganeti.messages.common import OPCODE_FIELDS, OPCODE_REQUIRED, opcode_body, schema

NAME = "ganeti-cluster-status"

TYPE = MessageType(
    name=NAME,
    routing_key="ganeti.event.cluster",
    description=("One message per status of `OP_CLUSTER_SET_PARAMS`, so the frontend refreshes "
                 "the cluster's disk templates and resources."),
    schema=schema([NAME], OPCODE_FIELDS, OPCODE_REQUIRED),
    example={"type": NAME, "operation": "OP_CLUSTER_SET_PARAMS", "status": "success",
             "jobId": 2500, "event_time": [1700000300, 0], "cluster": "gntcluster.example.test",
             "logmsg": None, "result": None},
)


def build(op, cluster):
    return Message("ganeti.event.cluster", opcode_body(NAME, op, cluster), op.message_id(cluster))
