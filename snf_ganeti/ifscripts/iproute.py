"""The one place the NIC scripts run iproute2's ``ip`` (links, rules, routes, proxies).

Why ``ip`` here and not pyroute2: Ganeti runs the NIC script for every NIC of every
instance it starts, and for a routed NIC after a live migration, while the instance has
no network. Importing pyroute2 0.7.2 (Debian 12's) takes about 0.13 s: it scans every
installed distribution for plugins and loads them all, with multiprocessing, asyncio and
unittest.mock, and runs ``uname -p`` and ``file``. That was more than the rest of an ifup
together. One ``ip`` takes 2.5 ms, and sends the same netlink requests (it is the
kernel's own front end to them). pyroute2 stays where its import is paid once: dhcpd's
link monitor, and the private bridges made once per network and node (host.py).

Every call is checked: a failure is a :class:`HostError` naming the command and the
kernel's answer, unless the answer is one the caller expects (``EXISTS``, ``MISSING``).
"""

import json
import re
import subprocess

from snf_ganeti import pathutils
from snf_ganeti.errors import HostError, one_line

# How ip words the kernel's answers (C locale) when what was to be added is there already,
# or what was to be removed is gone already (a route, a rule, a proxy, or its device).
EXISTS = ("File exists",)
MISSING = ("No such file or directory", "No such process", "Cannot find device",
           "No such device", "does not exist")
_ENV = {"LC_ALL": "C"}
# What a batch line may hold as it is: ip's batch parser takes quotes, backslashes and "#"
# (a comment) for itself, and a device name may contain them.
_PLAIN = re.compile(r"[\w.:/@+-]+")
TIMEOUT = 30


def _ip(args, stdin=None):
    argv = [pathutils.IP, *args]
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=_ENV,
                              timeout=TIMEOUT)
    except FileNotFoundError:
        raise HostError(f"{pathutils.IP} is not installed (Debian package iproute2)") from None
    except subprocess.TimeoutExpired:
        raise HostError(f"ip {' '.join(args)}: did not finish in {TIMEOUT} s") from None


def _answer(proc):
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("Command failed")]
    return one_line("\n".join(lines), default=f"exit status {proc.returncode}")


def run(*args, ok=()):
    """``ip ARGS``; its output, or None where it failed with one of the answers in ``ok``."""
    proc = _ip(args)
    if proc.returncode == 0:
        return proc.stdout
    answer = _answer(proc)
    if any(expected in answer for expected in ok):
        return None
    raise HostError(f"ip {' '.join(args)}: {answer}")


def show(*args):
    """``ip -json ARGS`` parsed: a list of objects; empty where the device or table asked
    about does not exist."""
    out = run("-json", *args, ok=MISSING)
    try:
        return json.loads(out) if out and out.strip() else []
    except ValueError:
        raise HostError(f"ip -json {' '.join(args)}: unreadable output") from None


def link(name, *options):
    """``ip link show`` of the link ``name`` (with ``options``, say ``-Numeric``) as a dict:
    mtu, address, group, ...; None where there is no such link."""
    found = show(*options, "link", "show", "dev", name)
    return found[0] if found else None


def batch(commands):
    """Run ``commands`` (argument lists, each what follows ``ip``) in one ``ip -batch``, in
    order; it stops at the first that fails, and the error names that one."""
    if not all(_PLAIN.fullmatch(arg) for command in commands for arg in command):
        for command in commands:  # one ip each: its arguments reach it untouched
            run(*command)
        return
    proc = _ip(["-batch", "-"], stdin="".join(" ".join(c) + "\n" for c in commands))
    if proc.returncode == 0:
        return
    failed = [line.rsplit(":", 1)[1] for line in proc.stderr.splitlines()
              if line.startswith("Command failed -:")]
    index = int(failed[0]) - 1 if failed and failed[0].isdigit() else None
    what = " ".join(commands[index]) if index is not None and index < len(commands) else "-batch"
    raise HostError(f"ip {what}: {_answer(proc)}")
