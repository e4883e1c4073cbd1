"""snf-dhcp-lease: the DHCP server acknowledged an address to an instance's NIC."""

import json

from snf_ganeti.messages import Message, MessageType, event_time, prefix_of
from snf_ganeti.messages.common import EVENT_TIME, MAC, NULLABLE_STRING, schema

NAME = "snf-dhcp-lease"

TYPE = MessageType(
    name=NAME,
    routing_key="ganeti.<prefix>.event.dhcp",
    description=("Published by `snf-ganeti dhcpd` for each DHCPACK (DHCPv4) or DHCPv6 reply: "
                 "which instance NIC on which tap got which address, and for how long."),
    schema=schema([NAME], {
        "event_time": EVENT_TIME, "node": {"type": "string"},
        "instance": {"type": "string", "minLength": 1}, "tap": {"type": "string"}, "mac": MAC,
        "ip": NULLABLE_STRING, "family": {"enum": ["ipv4", "ipv6"]},
        "lease_time": {"type": "integer", "minimum": 0}, "hostname": NULLABLE_STRING},
        ["event_time", "node", "instance", "tap", "mac", "family"]),
    example={"type": NAME, "node": "gnt1.example.test", "instance": "snf-42", "tap": "tap0",
             "mac": "aa:00:00:12:34:56", "ip": "192.0.2.10", "family": "ipv4",
             "lease_time": 604800, "hostname": "snf-42", "event_time": [1700000700, 0]},
)


def build(fields, now, message_id=None):
    body = {"type": NAME, **fields, "event_time": event_time(now)}
    return Message(f"ganeti.{prefix_of(fields['instance'])}.event.dhcp", body, message_id)


def encoder(fields):
    """(routing key, ``encode(now)``): the JSON bodies ``build(fields, now)`` gives, for a
    server that sends many events of the same fields (one per ACK of a NIC) and so encodes
    all but the event time once."""
    head = json.dumps({"type": NAME, **fields}, separators=(",", ":"))[:-1]

    def encode(now):
        sec, usec = event_time(now)
        return f'{head},"event_time":[{sec},{usec}]}}'.encode()

    return f"ganeti.{prefix_of(fields['instance'])}.event.dhcp", encode
