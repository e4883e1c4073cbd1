"""ganeti-net-status: an instance's NIC configuration, from a Ganeti hook."""

from snf_ganeti.messages import Message, MessageType, event_time, prefix_of
from snf_ganeti.messages.common import EVENT_TIME, MAC, NULLABLE_STRING, schema

NAME = "ganeti-net-status"
_NIC = {"type": "object", "properties": {
    "index": {"type": "integer", "minimum": 0}, "name": NULLABLE_STRING, "uuid": NULLABLE_STRING,
    "mac": MAC, "ip": NULLABLE_STRING, "ipv6": NULLABLE_STRING, "mode": NULLABLE_STRING,
    "link": NULLABLE_STRING, "network": NULLABLE_STRING,
    "firewall": NULLABLE_STRING},
    "required": ["index", "mac"]}

TYPE = MessageType(
    name=NAME,
    routing_key="ganeti.<prefix>.event.net",
    description=(
        "Published by the Ganeti post hooks of instance add, start, reboot, modify, migrate, "
        "failover, rename and reinstall with the instance's NICs as Ganeti's hook environment "
        "gives them: index, name, uuid, MAC, IPv4, the EUI-64 IPv6 address in the network's "
        "IPv6 subnet, mode, link, network name and firewall profile (from instance tags). "
        "Synnefo's current frontend does not bind this key; other frontends may."),
    schema=schema([NAME], {
        "event_time": EVENT_TIME, "instance": {"type": "string", "minLength": 1},
        "hook": {"type": "string"}, "node": {"type": "string"}, "cluster": {"type": "string"},
        "nics": {"type": "array", "items": _NIC}}, ["event_time", "instance", "nics"]),
    example={"type": NAME, "instance": "snf-42", "hook": "instance-start", "node": "gnt1.example.test",
             "cluster": "gntcluster.example.test", "event_time": [1700000500, 0],
             "nics": [{"index": 0, "name": "snf-nic-7", "uuid": None, "mac": "aa:00:00:12:34:56",
                       "ip": "192.0.2.10", "ipv6": "2001:db8::a800:ff:fe12:3456", "mode": "routed",
                       "link": "rt1", "network": "snf-net-1", "firewall": "protected"}]},
)


def build(instance, nics, hook, node, cluster, now, message_id=None):
    body = {"type": NAME, "instance": instance, "nics": list(nics), "hook": hook, "node": node,
            "cluster": cluster, "event_time": event_time(now)}
    return Message(f"ganeti.{prefix_of(instance)}.event.net", body, message_id)
