"""``snf-ganeti eventd``: run the daemon; its part of ``snf-ganeti status``."""

import os
import time

from snf_ganeti import cli, daemon_status

PART = "eventd"


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
    return daemon_status.run_daemon(args, Eventd, "eventd")


def status(config):
    from snf_ganeti.eventd.daemon import STATUS_FILE
    stats, running = daemon_status.read(os.path.join(config.eventd.state_dir, STATUS_FILE),
                                        "eventd")
    if "pid" not in stats:
        return {"running": False, **stats}
    last = stats.get("last_event")
    return {
        "running": running,
        "node": stats.get("node"),
        "master": stats.get("master"),
        "jobs_seen": stats.get("jobs_seen"),
        "messages_published": stats.get("messages_published"),
        "last_event": (f"job {last['job']} {last['status']} "
                       f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last['time']))}"
                       if last else None),
        "pending_jobs": stats.get("pending_jobs"),
        "broker_blocked": stats.get("broker_blocked"),
    }
