"""snf-nic-event: the NIC script plumbed (up) or cleaned (down) one tap on a node."""

from snf_ganeti.messages import Message, MessageType, event_time, prefix_of
from snf_ganeti.messages.common import EVENT_TIME, MAC, NULLABLE_STRING, schema

NAME = "snf-nic-event"

TYPE = MessageType(
    name=NAME,
    routing_key="ganeti.<prefix>.event.nic",
    description=("Published by `snf-ganeti ifup` and `ifdown` on the node that runs the instance: "
                 "what was set up or removed for one tap (mode, link, MAC, IPs, firewall profile)."),
    schema=schema([NAME], {
        "event_time": EVENT_TIME, "action": {"enum": ["up", "down"]},
        "node": {"type": "string"}, "instance": {"type": "string", "minLength": 1},
        "tap": {"type": "string", "minLength": 1}, "index": {"type": ["integer", "null"]},
        "mac": MAC, "ip": NULLABLE_STRING, "ipv6": NULLABLE_STRING,
        "mode": {"enum": ["bridged", "routed", "openvswitch"]}, "link": NULLABLE_STRING,
        "network": NULLABLE_STRING,
        "firewall": {"type": ["string", "null"], "description": "profile name; null: none"}},
        ["event_time", "action", "node", "instance", "tap", "mac", "mode"]),
    example={"type": NAME, "action": "up", "node": "gnt1.example.test", "instance": "snf-42",
             "tap": "tap0", "index": 0, "mac": "aa:00:00:12:34:56", "ip": "192.0.2.10",
             "ipv6": "2001:db8::a800:ff:fe12:3456", "mode": "routed", "link": "rt1",
             "network": "snf-net-1", "firewall": "protected", "event_time": [1700000600, 0]},
)


def build(fields, now, message_id=None):
    body = {"type": NAME, **fields, "event_time": event_time(now)}
    return Message(f"ganeti.{prefix_of(fields['instance'])}.event.nic", body, message_id)
