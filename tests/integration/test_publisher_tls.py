"""The publisher on an amqps:// broker: a private CA, client certificates, and what an
operator sees when a certificate does not fit."""

import dataclasses
import re
import subprocess
import tempfile
import uuid

import pytest

from snf_ganeti.config import AmqpConfig, Config
from snf_ganeti.core_cli import core_status
from snf_ganeti.publisher import publish_once
from snf_ganeti.spool import Spool
from tests.fixtures.broker import Consumer
from tests.support.rabbitmq import PrivateBroker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_broker(broker):  # after the session broker, so this one leaves epmd running for it
    instance = PrivateBroker(tempfile.mkdtemp(prefix="snft-rabbitmq-"), tls=True)
    instance.start()
    yield instance
    instance.destroy()


def amqps_config(tls_broker, tmp_path, **tls):
    return AmqpConfig(urls=(tls_broker.tls_url,), exchange=f"snft-{uuid.uuid4().hex[:8]}",
                      spool_dir=str(tmp_path / "spool"), connect_timeout=2.0,
                      confirm_timeout=5.0, max_backoff=1.0, **tls)


def spooled(amqp):
    return Spool(amqp.spool_dir).stats()[0]


@pytest.mark.parametrize("scheme", ["amqps", "AMQPS"])
def test_a_broker_with_a_private_ca_that_asks_for_client_certificates(tls_broker, tmp_path,
                                                                     scheme):
    files = tls_broker.tls_files
    amqp = dataclasses.replace(
        amqps_config(tls_broker, tmp_path, tls_ca_file=files["ca"],
                     tls_cert_file=files["cert"], tls_key_file=files["key"]),
        urls=(scheme + tls_broker.tls_url[len("amqps"):],))
    consumer = Consumer(tls_broker.url, amqp.exchange)
    try:
        message_id = publish_once(amqp, "ganeti.snf.event.x", {"n": 1})
        assert spooled(amqp) == 0
        assert [p.message_id for p, _ in consumer.drain(expect=1)] == [message_id]
    finally:
        consumer.delete()
    assert core_status(Config(amqp=amqp))["broker"].startswith("reachable at amqps://")


@pytest.mark.parametrize("left_out, shown", [
    ("tls_ca_file", "CERTIFICATE_VERIFY_FAILED"),
    # The broker sends its alert and closes: what the client reads first is a race.
    ("tls_cert_file",
     "(CERTIFICATE_REQUIRED|Connection reset by peer|the broker closed the connection|"
     "EOF occurred)"),
])
def test_a_certificate_that_does_not_fit_keeps_messages_and_says_why(tls_broker, tmp_path,
                                                                    caplog, left_out, shown):
    files = tls_broker.tls_files
    tls = {"tls_ca_file": files["ca"], "tls_cert_file": files["cert"],
           "tls_key_file": files["key"]}
    del tls[left_out]
    if left_out == "tls_cert_file":
        del tls["tls_key_file"]
    amqp = amqps_config(tls_broker, tmp_path, **tls)
    publish_once(amqp, "ganeti.snf.event.x", {"n": 1}, timeout=1)
    assert spooled(amqp) == 1
    status = core_status(Config(amqp=amqp))["broker"]
    assert status.startswith("UNREACHABLE") and re.search(shown, status), status
    assert "guest:guest" not in status and re.search(shown, caplog.text)


@pytest.mark.parametrize("key, problem", [
    ("tls_ca_file", "amqp.tls_ca_file /nonexistent/ca.pem: No such file or directory"),
    ("tls_cert_file", "amqp.tls_cert_file/tls_key_file /nonexistent/ca.pem: No such file"),
])
def test_a_tls_file_that_cannot_be_loaded_is_named(tls_broker, tmp_path, key, problem):
    amqp = amqps_config(tls_broker, tmp_path, **{key: "/nonexistent/ca.pem"})
    assert problem in core_status(Config(amqp=amqp))["broker"]


def test_a_tls_file_problem_leaves_the_other_brokers_to_try(tls_broker, tmp_path):
    amqp = dataclasses.replace(amqps_config(tls_broker, tmp_path, tls_ca_file="/nonexistent.pem"),
                               urls=(tls_broker.tls_url, tls_broker.url))
    assert core_status(Config(amqp=amqp))["broker"] == \
        f"reachable at {tls_broker.url.replace(':guest@', ':***@')}"


def test_an_encrypted_key_is_refused_without_a_prompt(tls_broker, tmp_path):
    files = tls_broker.tls_files
    encrypted = str(tmp_path / "encrypted.key")
    subprocess.run(["openssl", "pkey", "-in", files["key"], "-aes256", "-passout", "pass:pw",
                    "-out", encrypted], check=True, capture_output=True)
    amqp = amqps_config(tls_broker, tmp_path, tls_ca_file=files["ca"],
                        tls_cert_file=files["cert"], tls_key_file=encrypted)
    status = core_status(Config(amqp=amqp))["broker"]
    assert f"amqp.tls_key_file {encrypted}: the key is encrypted" in status, status
