"""Progress of `snf-ganeti os create` as ganeti-create-progress messages on the real broker."""

import json

import pytest
import yaml

from snf_ganeti import messages
from snf_ganeti.config import AmqpConfig
from snf_ganeti.publisher import Publisher

pytestmark = pytest.mark.integration
PROPS = json.dumps({"OSFAMILY": "linux", "ROOT_PARTITION": "1"})


@pytest.fixture
def amqp_os_run(os_run, amqp_config):
    config = yaml.safe_load(open(os_run.config))
    config["osdefinition"]["publish_progress"] = True
    config["amqp"] = {**amqp_config.__dict__, "urls": list(amqp_config.urls)}
    with open(os_run.config, "w") as stream:
        yaml.safe_dump(config, stream)
    return os_run


def bodies(consumer, expect):
    got = consumer.drain(expect=expect, timeout=30)
    return [(props, json.loads(body)) for props, body in got]


def deploy(os_run, image, **osp):
    name = os_run.add_image(image)
    return os_run.run("create", {"img_id": name, "img_format": "diskdump",
                                 "img_properties": PROPS, **osp})


def monitor_lines(proc):
    return [json.loads(l[10:]) for l in proc.stdout.decode().splitlines()
            if l.startswith("[MONITOR] ")]


def test_progress_messages_validate_and_copy_progress_is_monotone(amqp_os_run, os_images,
                                                                 consumer):
    proc = deploy(amqp_os_run, os_images.get())
    assert proc.returncode == 0, proc.stderr.decode()
    expected = len(monitor_lines(proc))
    received = bodies(consumer, expected)
    assert len(received) == expected
    for props, body in received:
        messages.validate(body)
        assert body["instance"] == "snf-42"
        assert messages.type_of(body).name == "ganeti-create-progress"
    assert {p.delivery_mode for p, _ in received} == {2}
    copies = [b["progress"] for _, b in received if b["type"] == "image-copy-progress"]
    assert copies == sorted(copies) and copies[0] == 0.0 and copies[-1] == 100.0
    infos = [b["messages"][0] for _, b in received if b["type"] == "image-info"]
    assert infos[0] == "Starting image copy..."
    assert infos[-1] == "Image customization finished successfully."
    tasks = [b["task"] for _, b in received if b.get("subtype") == "task-start"]
    assert tasks[:3] == ["FixPartitionTable", "FilesystemResizeUnmounted", "MountImage"]


def test_routing_key_is_the_instance_prefix(amqp_os_run, os_images, running_broker,
                                            amqp_config):
    from tests.fixtures.broker import Consumer
    progress = Consumer(running_broker.url, amqp_config.exchange,
                        keys=("ganeti.snf.event.progress",))
    try:
        assert deploy(amqp_os_run, os_images.get()).returncode == 0
        assert progress.drain(expect=1, timeout=30)
    finally:
        progress.delete()


def test_failure_is_an_image_error_message(amqp_os_run, consumer):
    proc = amqp_os_run.run("create", {"img_id": "nosuch.img", "img_format": "diskdump"})
    assert proc.returncode == 6
    errors = [b for _, b in bodies(consumer, 2) if b["type"] == "image-error"]
    assert len(errors) == 1 and "nosuch.img" in errors[0]["messages"][0]
    messages.validate(errors[0])


def test_nothing_is_lost_while_the_broker_is_down(amqp_os_run, os_images, consumer,
                                                  running_broker, amqp_config):
    running_broker.stop()
    proc = deploy(amqp_os_run, os_images.get())
    assert proc.returncode == 0, proc.stderr.decode()
    expected = len(monitor_lines(proc))
    running_broker.start()
    sender = Publisher(AmqpConfig(**{**amqp_config.__dict__}))  # what the node daemon does
    try:
        assert sender.flush(timeout=30)
    finally:
        sender.close()
    received = bodies(consumer, expected)
    assert len(received) == expected
    assert received[-1][1]["messages"] == ["Image customization finished successfully."]
