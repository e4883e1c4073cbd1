"""ganeti-create-progress: image deployment progress of an instance being created."""

from snf_ganeti.messages import Message, MessageType, event_time, prefix_of
from snf_ganeti.messages.common import EVENT_TIME, schema

NAME = "ganeti-create-progress"
TYPES = ("image-info", "image-error", "image-copy-progress", "image-helper", "image-warning")
_MESSAGES = {"type": "array", "items": {"type": "string"}}

TYPE = MessageType(
    name=NAME,
    type_values=TYPES,
    routing_key="ganeti.<prefix>.event.progress",
    description=(
        "The OS definition's progress while it deploys an image, in snf-image's monitor format "
        "with `instance` and `event_time` added: `image-info` (`messages`), `image-error` "
        "(`messages` or `stderr`), `image-copy-progress` (`position`, `total` in bytes and "
        "`progress` in percent, monotone, ending at 100), `image-helper` (`subtype` task-start or "
        "task-end with `task`, or warning/error with `messages`). Sent from the node that runs "
        "the OS create script."),
    schema={**schema(TYPES, {
        "instance": {"type": "string", "minLength": 1}, "event_time": EVENT_TIME,
        "timestamp": {"type": "number"}, "messages": _MESSAGES, "stderr": {"type": "string"},
        "position": {"type": "integer", "minimum": 0}, "total": {"type": "integer", "minimum": 0},
        "progress": {"type": "number", "minimum": 0},
        "subtype": {"enum": ["task-start", "task-end", "warning", "error", "info"]},
        "task": {"type": "string"}}, ["instance", "event_time", "timestamp"]),
        "allOf": [
            {"if": {"properties": {"type": {"const": "image-copy-progress"}}},
             "then": {"required": ["position", "total", "progress"]}},
            {"if": {"properties": {"type": {"const": "image-helper"}}},
             "then": {"required": ["subtype"]}},
            {"if": {"properties": {"type": {"enum": ["image-info", "image-warning"]}}},
             "then": {"required": ["messages"]}},
            {"if": {"properties": {"type": {"const": "image-error"}}},
             "then": {"anyOf": [{"required": ["messages"]}, {"required": ["stderr"]}]}},
        ]},
    example={"type": "image-copy-progress", "position": 335547996, "total": 474398720,
             "progress": 70.73, "timestamp": 1378914869.312985, "instance": "snf-42",
             "event_time": [1378914869, 401223]},
)


def build(instance, monitor_message, now, message_id=None):
    """Relay one snf-image monitor message for ``instance``."""
    body = dict(monitor_message)
    body.setdefault("timestamp", now)
    body.update(instance=instance, event_time=event_time(now))
    return Message(f"ganeti.{prefix_of(instance)}.event.progress", body, message_id)
