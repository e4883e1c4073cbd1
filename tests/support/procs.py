"""Subprocess helpers for tests: the CLI and Python modules of this tree, always reaped."""

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wait_until(predicate, seconds=60, interval=0.5):
    """True as soon as ``predicate()`` is, False after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def env(**extra):
    merged = {**os.environ, "PYTHONPATH": ROOT, **extra}
    merged.pop("JOURNAL_STREAM", None)
    return merged


def cli(*args, **kwargs):
    """Run ``snf-ganeti ARGS`` to completion; returns CompletedProcess (text)."""
    kwargs.setdefault("timeout", 120)
    return subprocess.run([sys.executable, "-m", "snf_ganeti.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env(), **kwargs)


def spawn(*argv, module=None, extra_env=None, **kwargs):
    """Start ``python -m module ARGV`` (or ``snf-ganeti ARGV``) with pipes."""
    target = ["-m", module] if module else ["-m", "snf_ganeti.cli"]
    return subprocess.Popen([sys.executable, *target, *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=env(**(extra_env or {})), **kwargs)


def wait_line(stream, predicate, timeout=30):
    """Read lines from ``stream`` until one satisfies ``predicate``; return it."""
    deadline = time.monotonic() + timeout
    for line in stream:
        if predicate(line):
            return line
        if time.monotonic() > deadline:
            break
    raise AssertionError("expected output line did not appear")


def reap(*processes):
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate()
