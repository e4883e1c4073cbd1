"""``snf-ganeti hook``: what Ganeti runs from /etc/ganeti/hooks/<path>-post.d/."""

import logging
import os
import signal

from snf_ganeti import cli
from snf_ganeti.errors import SnfGanetiError

PART = "hooks"
log = logging.getLogger("snf-ganeti.hook")


class _TimedOut(Exception):
    pass


def register(sub, common):
    p = sub.add_parser(
        "hook", parents=[common], help="Ganeti instance hook (post add/start/stop/...)",
        description="Read the GANETI_* environment of an instance post hook. On the master, "
                    "publish ganeti-net-status with the instance's NICs (add, start, reboot, "
                    "modify, migrate, failover, rename, reinstall). On the node the instance "
                    "left (stop, remove, migrate, failover), remove its taps' host state as "
                    "ifdown does. Finishes within hooks.timeout seconds; never fails the "
                    "Ganeti job unless hooks.strict is set.")
    p.set_defaults(handler=run)


def run(args):
    """Ganeti's instance post hook: publish or clean up, within hooks.timeout."""
    from snf_ganeti.hooks.run import run_hook
    config = cli.load_config(args)

    def timed_out(*_):
        raise _TimedOut(f"did not finish within hooks.timeout ({config.hooks.timeout:g} s)")

    signal.signal(signal.SIGALRM, timed_out)
    signal.setitimer(signal.ITIMER_REAL, config.hooks.timeout)
    try:
        run_hook(config, os.environ)
        return 0
    except Exception as err:    # a hook's failure must not fail the job (unless strict)
        what = os.environ.get("GANETI_HOOKS_PATH", "?")
        if isinstance(err, (SnfGanetiError, _TimedOut)):
            log.error("hook %s: %s", what, err)
        else:
            log.exception("hook %s failed", what)
        return 1 if config.hooks.strict else 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


# Ganeti runs the hook script, which runs `snf-ganeti hook`: see cli.ganeti_args.
GANETI_ARGV = {("hook",): {"handler": run}}
