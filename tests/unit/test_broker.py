"""snf_ganeti.broker without a broker: how connections are configured and errors described."""

import dataclasses
import ssl

import pika.exceptions
import pytest

from snf_ganeti import broker
from snf_ganeti.config import AmqpConfig
from snf_ganeti.errors import BrokerError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("err, described", [
    (ConnectionRefusedError(111, "Connection refused"), "ConnectionRefusedError (Connection refused)"),
    (pika.exceptions.AMQPConnectionError(
        "AMQPConnectorSocketConnectError: ConnectionRefusedError(111, 'Connection refused')"),
     "AMQPConnectionError (Connection refused)"),
    (pika.exceptions.IncompatibleProtocolError(
        'StreamLostError: ("Stream connection lost: SSLError(1, \'[SSL: TLSV13_ALERT_CERTIFICATE_'
        'REQUIRED] tlsv13 alert certificate required (_ssl.c:2546)\')",)'),
     "IncompatibleProtocolError ([SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert "
     "certificate required)"),
    (pika.exceptions.IncompatibleProtocolError(
        'StreamLostError: ("Stream connection lost: SSLEOFError(8, \'EOF occurred in violation '
        'of protocol (_ssl.c:2393)\')",)'),
     "IncompatibleProtocolError (EOF occurred in violation of protocol (_ssl.c:2393))"),
    (pika.exceptions.IncompatibleProtocolError("StreamLostError: ('Transport indicated EOF',)"),
     "IncompatibleProtocolError (the broker closed the connection)"),
    (pika.exceptions.ConnectionBlockedTimeout("Blocked connection timeout expired."),
     "ConnectionBlockedTimeout"),
])
def test_errors_are_described_by_their_cause(err, described):
    assert broker.describe(err) == described


def test_no_tls_keys_leave_pikas_default():
    assert broker.tls_context(AmqpConfig()) is None


def test_a_key_without_its_certificate_is_named():
    with pytest.raises(BrokerError, match="amqp.tls_key_file is set but amqp.tls_cert_file"):
        broker.tls_context(AmqpConfig(tls_key_file="/etc/snf-ganeti/client.key"))


def test_a_missing_ca_file_is_named_with_its_key():
    with pytest.raises(BrokerError, match="^amqp.tls_ca_file /nonexistent.pem: No such file"):
        broker.tls_context(AmqpConfig(tls_ca_file="/nonexistent.pem"))


def test_the_tls_context_is_asked_for_only_by_amqps_urls():
    asked = []
    context = ssl.create_default_context()

    def tls():
        asked.append(True)
        return context

    amqp = AmqpConfig(confirm_timeout=20.0)
    plain = broker.connection_parameters("amqp://u:p@mq1/", amqp, tls)
    assert plain.ssl_options is None and not asked
    secure = broker.connection_parameters("AMQPS://u:p@mq1/", amqp, tls)
    assert secure.ssl_options.context is context and secure.port == 5671 and asked
    assert secure.blocked_connection_timeout == broker.BLOCKED_TIMEOUT_MAX  # not 3 x 20 s
    short = broker.connection_parameters("amqp://u:p@mq1/", dataclasses.replace(
        amqp, confirm_timeout=2.0))
    assert short.blocked_connection_timeout == 6.0
