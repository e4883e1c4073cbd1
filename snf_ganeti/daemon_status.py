"""What the daemons share: their status files (as ``snf-ganeti status`` reads them), their
housekeeping (watchdog, status) and how the CLI runs them."""

import json
import logging
import os
import signal
import time

from snf_ganeti import sdnotify


def read(path, daemon):
    """(stats, running) from ``path``; stats is a one-key explanation if there is no file."""
    try:
        with open(path) as stream:
            stats = json.load(stream)
    except (OSError, ValueError):
        return {"detail": f"no status in {path} ({daemon} never ran here?)"}, False
    return stats, _alive(stats.get("pid")) and time.time() - stats.get("updated", 0) < 10


def _alive(pid):
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, TypeError, ValueError):
        return False


class Housekeeping:
    """What a daemon's loop does on the side: ping systemd's watchdog, rewrite its status."""

    def __init__(self, write_status, status_interval=1.0):
        self.write_status, self.status_interval = write_status, status_interval
        self.watchdog = sdnotify.watchdog_interval()
        self._last_status = self._last_watchdog = 0.0

    def tick(self, now):
        if self.watchdog and now - self._last_watchdog >= self.watchdog:
            self._last_watchdog = now
            sdnotify.notify("WATCHDOG=1")
        if now - self._last_status >= self.status_interval:
            self._last_status = now
            self.write_status()


def run_daemon(args, build, name):
    """``build(config, publisher).run(should_stop)`` until SIGTERM or SIGINT; exit status 0.

    The publisher is closed (flushed for ``amqp.confirm_timeout``) unless the daemon says a
    thread of its own still uses it (``publisher_in_use``): the spool keeps what it holds."""
    from snf_ganeti import cli
    from snf_ganeti.publisher import Publisher
    config = cli.load_config(args)
    stop = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.append(True))
    publisher = Publisher(config.amqp)
    daemon = build(config, publisher)
    try:
        daemon.run(lambda: bool(stop))
    finally:
        if not getattr(daemon, "publisher_in_use", False):
            publisher.close(timeout=config.amqp.confirm_timeout)
    logging.getLogger(f"snf-ganeti.{name}").info("%s stopped", name)
    return 0
