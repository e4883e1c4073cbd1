"""Progress messages in snf-image's monitor format (spec §4.2), to the OS log and AMQP.

Every message goes to stdout as ``[MONITOR] <json>`` (Ganeti's OS log, as
snf-image does without a monitor) and, through the core publisher, as a
``ganeti-create-progress`` message: spooled first, so a broker outage loses
nothing (the node daemon delivers what this short-lived process could not).
"""

import json
import logging
import sys
import time

from snf_ganeti.errors import SnfGanetiError

log = logging.getLogger(__name__)


def copy_message(position, total):
    # Nothing to copy (img_id=null) is a finished copy: 100, not snf-image's 0.
    progress = round(100.0 * position / total, 2) if total else 100.0
    return {"type": "image-copy-progress", "position": position, "total": total,
            "progress": progress}


def info(text):
    return {"type": "image-info", "messages": [text]}


def error(text):
    return {"type": "image-error", "messages": [text]}


def helper(subtype, task=None, text=None):
    body = {"type": "image-helper", "subtype": subtype}
    if task is not None:
        body["task"] = task
    if text is not None:
        body["messages"] = [text]
    return body


class LogSink:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def __call__(self, body):
        self.stream.write("[MONITOR] " + json.dumps(body) + "\n")
        self.stream.flush()

    def close(self):
        pass


class AmqpSink:
    """Relays to AMQP as ganeti-create-progress for ``instance``."""

    def __init__(self, amqp, instance):
        # Imported here: a deploy that does not relay progress needs neither (1.5 ms).
        from snf_ganeti.messages import create_progress
        from snf_ganeti.publisher import Publisher
        self._message = create_progress.build
        self.amqp, self.instance = amqp, instance
        self.publisher = Publisher(amqp)

    def __call__(self, body):
        message = self._message(self.instance, body, body["timestamp"])
        self.publisher.publish(message.routing_key, message.body, message.message_id)

    def close(self):
        self.publisher.close(timeout=self.amqp.confirm_timeout)


class Progress:
    """Stamps and fans out monitor messages; a failing sink never fails the deployment."""

    def __init__(self, sinks, clock=time.time):
        self.sinks, self.clock = list(sinks), clock

    def emit(self, body):
        body = {**body, "timestamp": self.clock()}
        for sink in list(self.sinks):
            try:
                sink(body)
            except (SnfGanetiError, OSError) as err:
                log.warning("progress relay disabled: %s", err)
                self.sinks.remove(sink)

    def copy(self, position, total):
        self.emit(copy_message(position, total))

    def info(self, text):
        self.emit(info(text))

    def warning(self, text):
        log.warning("%s", text)
        self.emit(helper("warning", text=text))

    def close(self):
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as err:  # delivery is best effort; the spool keeps messages
                log.warning("progress relay: %s", err)


def open_progress(config, instance):
    sinks = [LogSink()]
    if config.osdefinition.publish_progress:
        try:
            sinks.append(AmqpSink(config.amqp, instance))
        except (SnfGanetiError, OSError) as err:
            log.warning("progress relay to AMQP disabled: %s", err)
    return Progress(sinks)
