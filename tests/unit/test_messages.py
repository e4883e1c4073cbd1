import json
import os

import pytest

from snf_ganeti import messages
from snf_ganeti.errors import MessageError
from snf_ganeti.messages import common, create_progress, lease_event, network_status, op_status

pytestmark = pytest.mark.unit
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OP = common.OpEvent(job_id=7, op_index=0, operation="OP_INSTANCE_STARTUP", status="success",
                    event_time=(1700000002, 400000), logmsg="* starting", result=None)


@pytest.mark.parametrize("message_type", messages.TYPES, ids=lambda t: t.name)
def test_every_example_validates(message_type):
    assert messages.validate(message_type.example) is message_type


def test_docs_are_generated_from_the_modules():
    with open(os.path.join(ROOT, "docs", "messages.md")) as shipped:
        assert shipped.read() == messages.render_docs(), "run: snf-ganeti messages docs > docs/messages.md"


def test_op_status_build_routes_by_prefix_and_has_stable_id():
    message = op_status.build(OP, "c1", "snf-42", {})
    assert message.routing_key == "ganeti.snf.event.op"
    assert message.message_id == "c1/job-7/op-0/success"
    assert messages.validate(message.body).name == "ganeti-op-status"
    assert "instance_nics" not in message.body


def test_network_status_job_fields_exactly():
    message = network_status.build(OP, "c1", "snf-net-5", {"network": "192.0.2.0/24", "x": 1})
    assert message.routing_key == "ganeti.snf.event.network"
    assert message.body["job_fields"] == {"subnet": "192.0.2.0/24", "gateway": None,
                                          "add_reserved_ips": None, "remove_reserved_ips": None,
                                          "group_name": None}
    messages.validate(message.body)


def test_progress_relay_adds_instance_and_event_time():
    message = create_progress.build("snf-9", {"type": "image-info", "messages": ["copy"]}, 10.5)
    assert message.routing_key == "ganeti.snf.event.progress"
    assert message.body["event_time"] == [10, 500000]
    messages.validate(message.body)


@pytest.mark.parametrize("body, where", [
    ({"type": "ganeti-op-status"}, "required"),
    ({**op_status.TYPE.example, "status": "cancelled"}, "status"),
    ({**op_status.TYPE.example, "event_time": [1, 1000000]}, "event_time"),
    ({"type": "image-copy-progress", "instance": "snf-1", "event_time": [1, 2], "timestamp": 1.0},
     "position"),
])
def test_invalid_bodies_fail_with_one_line(body, where):
    with pytest.raises(MessageError) as err:
        messages.validate(body)
    assert "\n" not in str(err.value) and where in str(err.value)


def test_unknown_type():
    with pytest.raises(MessageError, match="unknown message type 'nope'"):
        messages.validate({"type": "nope"})


def test_prefix_and_event_time():
    assert messages.prefix_of("snf-net-5") == "snf"
    assert messages.prefix_of("web1") == "web1"
    assert messages.event_time(5.9999999) == [5, 999999]


@pytest.mark.parametrize("now", [1700000700.0, 1700000700.25, 1700000700.9999996, 5.5])
def test_lease_event_encoder_gives_what_build_gives(now):
    fields = {key: value for key, value in lease_event.TYPE.example.items()
              if key not in ("type", "event_time")}
    routing_key, encode = lease_event.encoder(fields)
    body = json.loads(encode(now))
    message = lease_event.build(fields, now)
    assert (routing_key, body) == (message.routing_key, message.body)
    assert list(body) == list(message.body)
    messages.validate(body)
