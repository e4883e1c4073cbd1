"""``snf-ganeti eventd``: run the daemon; its part of ``snf-ganeti status``."""

import json
import logging
import os
import signal
import time

from snf_ganeti import cli
from snf_ganeti.publisher import Publisher

PART = "eventd"
log = logging.getLogger("snf-ganeti.eventd")


def register(sub, common):
    p = sub.add_parser(
        "eventd", parents=[common], help="publish Ganeti job status changes (daemon)",
        description="Watch Ganeti's job queue and publish one message per opcode status change, "
                    "in the format Synnefo's frontend expects. Runs in the foreground; under "
                    "systemd (Type=notify) it reports readiness and pings the watchdog. Also "
                    "delivers this node's spool. Publishes only on the Ganeti master.")
    p.set_defaults(handler=run)


def run(args):
    from snf_ganeti.eventd.daemon import Eventd
    config = cli.load_config(args)
    stop = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.append(True))
    publisher = Publisher(config.amqp)
    daemon = Eventd(config, publisher)
    log.info("eventd starting on %s, watching %s", daemon.node, daemon.queue_dir)
    try:
        daemon.run(lambda: bool(stop))
    finally:
        publisher.close(timeout=config.amqp.confirm_timeout)
    log.info("eventd stopped")
    return 0


def status(config):
    from snf_ganeti.eventd.daemon import STATUS_FILE
    path = os.path.join(config.eventd.state_dir, STATUS_FILE)
    try:
        with open(path) as stream:
            stats = json.load(stream)
    except (OSError, ValueError):
        return {"running": False, "detail": f"no status in {path} (eventd never ran here?)"}
    alive = _alive(stats.get("pid"))
    age = time.time() - stats.get("updated", 0)
    last = stats.get("last_event")
    return {
        "running": alive and age < 10,
        "node": stats.get("node"),
        "master": stats.get("master"),
        "jobs_seen": stats.get("jobs_seen"),
        "messages_published": stats.get("messages_published"),
        "last_event": (f"job {last['job']} {last['status']} "
                       f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last['time']))}"
                       if last else None),
        "pending_jobs": stats.get("pending_jobs"),
    }


def _alive(pid):
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, TypeError, ValueError):
        return False
