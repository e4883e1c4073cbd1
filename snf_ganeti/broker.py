"""Connections to the broker: pika's parameters, TLS from ``amqp.tls_*``, trying each of
``amqp.urls`` in turn, and broker errors described in one line without credentials."""

import functools
import re

import pika
import pika.exceptions

from snf_ganeti.config import mask_url
from snf_ganeti.errors import BrokerError

# pika drops a connection the broker has blocked for this long. While a daemon's write waits
# on such a connection its loop waits too, so this stays below the units' WatchdogSec=60s.
BLOCKED_TIMEOUT_MAX = 30.0
BROKER_ERRORS = (pika.exceptions.AMQPError, OSError)
_TLS_ALERT = re.compile(r"(\[SSL: [A-Z0-9_]+\][^(\"']*)")
# Quotes come escaped when the error is nested one level deeper (a TLS EOF in a lost stream).
_OS_ERROR = re.compile(r"[A-Za-z]+Error\(\d+, \\?'([^'\\]*)\\?'\)")
_EOF = "Transport indicated EOF"  # pika's words for a connection the broker closed


def wake(connection):
    """End the ``process_data_events`` under way as soon as the callback calling this returns.

    pika ends it before its time limit only for a BlockingChannel's deliveries or a
    connection event; confirms reach the underlying channel's callbacks, which are
    neither, so each wait for one lasted the whole limit (50 ms, twice for every
    short-lived publish). A timer due now is a connection event.
    """
    connection.call_later(0, _nothing)


def _nothing():
    pass


def abort(connection):
    """Drop ``connection`` at once. pika has no public call for it; its own blocked-connection
    timeout ends a connection this way (a closing handshake would wait for that timeout)."""
    try:
        connection._impl._terminate_stream(
            pika.exceptions.ConnectionClosedByClient(200, "the broker blocks publishing"))
        for _ in range(10):  # the abort completes in the connection's next poll
            if connection.is_closed:
                break
            connection.process_data_events(time_limit=0)
    except Exception:  # already broken, or a pika without it: the socket goes with us
        pass


def tls_context(amqp):
    """The TLS context for amqps:// brokers from ``amqp.tls_*``; None (pika's default: the
    system's CAs) when none is set. Raises BrokerError naming the key of a file it cannot
    load."""
    if not (amqp.tls_ca_file or amqp.tls_cert_file or amqp.tls_key_file):
        return None
    if amqp.tls_key_file and not amqp.tls_cert_file:
        raise BrokerError("amqp.tls_key_file is set but amqp.tls_cert_file, its certificate, "
                          "is not")
    import ssl
    try:
        context = ssl.create_default_context(cafile=amqp.tls_ca_file or None)
    except OSError as err:  # ssl.SSLError included
        raise BrokerError(f"amqp.tls_ca_file {amqp.tls_ca_file}: {_reason(err)}") from None
    if amqp.tls_cert_file:
        files = " and ".join(f for f in (amqp.tls_cert_file, amqp.tls_key_file) if f)
        try:
            # A callable password: OpenSSL would otherwise prompt on the terminal for a key's
            # passphrase, which no hook or daemon can answer.
            context.load_cert_chain(amqp.tls_cert_file, amqp.tls_key_file or None,
                                    password=_no_passphrase)
        except OSError as err:
            raise BrokerError(f"amqp.tls_cert_file/tls_key_file {files}: "
                              f"{_reason(err)}") from None
        except _EncryptedKey:
            raise BrokerError(f"amqp.tls_key_file {amqp.tls_key_file or files}: the key is "
                              "encrypted; give it without a passphrase, readable by root "
                              "only") from None
    return context


class _EncryptedKey(Exception):
    pass


def _no_passphrase():
    raise _EncryptedKey()


def _reason(err):
    return err.strerror or str(err)


def connection_parameters(url, amqp, tls=None):
    """pika's parameters for ``url``; ``tls()`` gives the TLS context for amqps:// (None:
    pika's default, the system's CAs) and is called only for such a URL."""
    params = pika.URLParameters(url)
    context = tls() if params.ssl_options is not None and tls is not None else None
    if context is not None:
        params.ssl_options = pika.SSLOptions(context)
    params.connection_attempts = 1
    params.retry_delay = 0
    params.socket_timeout = amqp.connect_timeout
    params.stack_timeout = amqp.connect_timeout * 2
    params.blocked_connection_timeout = min(amqp.confirm_timeout * 3, BLOCKED_TIMEOUT_MAX)
    params.heartbeat = amqp.heartbeat
    return params


def connect(amqp, start=0):
    """Connect to the first reachable broker of ``amqp.urls``, from ``start`` on.

    Returns (connection, index of the URL used); raises BrokerError naming the
    (masked) URLs when none answers.
    """
    urls = amqp.urls
    tls = functools.cache(lambda: tls_context(amqp))  # loaded once, for the first amqps URL
    problems = []
    for offset in range(len(urls)):
        index = (start + offset) % len(urls)
        try:
            return pika.BlockingConnection(connection_parameters(urls[index], amqp, tls)), index
        except BrokerError as err:  # a TLS file: this URL's problem, the others may do
            problems.append(f"{mask_url(urls[index])}: {err}")
        except BROKER_ERRORS as err:
            problems.append(f"{mask_url(urls[index])}: {describe(err)}")
    raise BrokerError("no broker reachable (" + "; ".join(problems) + ")")


def describe(err):
    """A short, credential-free description of a broker error."""
    text = type(err).__name__
    if isinstance(err, OSError) and err.strerror:
        return text + f" ({err.strerror})"
    # pika wraps the cause (a refused connection, a TLS alert such as a client certificate
    # the broker wants) in errors of its own, with the cause only in their text.
    wrapped = str(err.args)
    found = _TLS_ALERT.search(wrapped) or _OS_ERROR.search(wrapped)
    if found:
        return text + f" ({found.group(1).strip()})"
    return text + " (the broker closed the connection)" if _EOF in wrapped else text
