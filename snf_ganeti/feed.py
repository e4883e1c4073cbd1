"""The AMQP feed: a temporary queue on the exchange, each message printed as it arrives."""

import json
import time

from snf_ganeti import broker


def describe(routing_key, body):
    """One readable line for a message body."""
    if not isinstance(body, dict):
        return f"{routing_key}  (not a JSON object)"
    kind = body.get("type", "?")
    subject = body.get("instance") or body.get("network") or body.get("cluster") or ""
    parts = [routing_key, kind, subject]
    for key in ("operation", "status", "action", "tap", "ip", "subtype", "task"):
        if body.get(key) is not None:
            parts.append(str(body[key]))
    if kind == "image-copy-progress":
        parts.append(f"{body.get('progress')}%")
    if body.get("jobId") is not None:
        parts.append(f"job={body['jobId']}")
    if body.get("messages"):
        parts.append(" ".join(map(str, body["messages"])))
    return "  ".join(p for p in parts if p)


def record(routing_key, message_id, raw):
    """The --json form: one object per message."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw.decode("utf-8", "replace")
    return {"routing_key": routing_key, "message_id": message_id, "body": body}


def run(amqp, keys, count, timeout, emit, ready):
    """Consume from a temporary queue bound with ``keys``; call ``emit`` per message.

    ``ready()`` is called once the queue is bound. Stops after ``count``
    messages (0: never) or ``timeout`` seconds without one (0: never).
    Returns the number of messages received.
    """
    connection, _ = broker.connect(amqp)
    try:
        channel = connection.channel()
        channel.exchange_declare(amqp.exchange, exchange_type="topic", durable=True)
        queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        for key in keys:
            channel.queue_bind(queue, amqp.exchange, key)
        ready()
        received = 0
        last = time.monotonic()
        for method, properties, raw in channel.consume(queue, auto_ack=True, inactivity_timeout=0.2):
            if method is None:
                if timeout and time.monotonic() - last > timeout:
                    break
                continue
            last = time.monotonic()
            received += 1
            emit(method.routing_key, properties.message_id, raw)
            if count and received >= count:
                break
        return received
    finally:
        try:
            connection.close()
        except Exception:  # the broker went away; nothing left to close cleanly
            pass
