"""Schema pieces shared by the message types (Synnefo's contract, §2.1)."""

from dataclasses import dataclass

EVENT_TIME = {"type": "array", "items": [{"type": "integer", "minimum": 0},
                                         {"type": "integer", "minimum": 0, "maximum": 999999}],
              "minItems": 2, "maxItems": 2,
              "description": "[seconds, microseconds]; the consumer orders and de-duplicates by it"}
STATUS = {"enum": ["queued", "waiting", "canceling", "running", "canceled", "success", "error"]}
OPCODE_FIELDS = {
    "event_time": EVENT_TIME,
    "operation": {"type": "string", "pattern": "^OP_[A-Z0-9_]+$"},
    "status": STATUS,
    "cluster": {"type": "string"},
    "logmsg": {"description": "last element of the opcode's last log entry, or null"},
    "result": {"description": "the opcode's result, verbatim (null until it finished)"},
    "jobId": {"type": "integer", "minimum": 0},
}
OPCODE_REQUIRED = ["type", "event_time", "operation", "status", "cluster", "logmsg", "jobId"]
NULLABLE_STRING = {"type": ["string", "null"]}
MAC = {"type": "string", "pattern": "^([0-9a-f]{2}:){5}[0-9a-f]{2}$"}


def schema(type_values, properties, required, extra=True):
    return {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"type": {"enum": list(type_values)}, **properties},
            "required": sorted(set(required) | {"type"}), "additionalProperties": extra}


def opcode_body(type_name, op, cluster):
    """The fields every job-derived message carries, from an OpStatus-like record.

    ``op`` has ``event_time``, ``operation``, ``status``, ``logmsg``,
    ``result`` and ``job_id`` attributes.
    """
    return {"type": type_name, "event_time": list(op.event_time), "operation": op.operation,
            "status": op.status, "cluster": cluster, "logmsg": op.logmsg, "result": op.result,
            "jobId": op.job_id}


@dataclass(frozen=True)
class OpEvent:
    """One opcode of one job reaching one status: what every job message reports."""

    job_id: int
    op_index: int
    operation: str
    status: str
    event_time: tuple
    logmsg: object = None
    result: object = None

    def message_id(self, cluster):
        # Deterministic, so a re-scan after a crash re-sends under the same id.
        return f"{cluster}/job-{self.job_id}/op-{self.op_index}/{self.status}"
