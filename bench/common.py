"""Shared pieces of the benchmarks: a private broker, timing and the report line."""

import contextlib
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.rabbitmq import PrivateBroker  # noqa: E402


@contextlib.contextmanager
def private_broker():
    broker = PrivateBroker(tempfile.mkdtemp(prefix="snf-bench-rabbitmq-"))
    broker.start()
    try:
        yield broker
    finally:
        broker.destroy()


def rate(count, seconds):
    return count / seconds if seconds > 0 else float("inf")


def percentile(values, fraction):
    """The value at ``fraction`` (0..1) of ``values`` sorted (nearest rank, no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def interleaved(runs, ours, peer):
    """Medians of ``runs`` alternating measurements (rates): both see the same noise."""
    mine, theirs = [], []
    for _ in range(runs):
        theirs.append(peer())
        mine.append(ours())
    return statistics.median(mine), statistics.median(theirs)


def report(name, ours, peer_name, peer, unit, goal):
    ratio = ours / peer if peer else float("inf")
    verdict = "meets" if ratio >= goal else "BELOW"
    print(f"{name}: snf-ganeti {ours:,.0f} {unit} | {peer_name} {peer:,.0f} {unit} | "
          f"ratio {ratio:.2f} ({verdict} goal {goal})")
    return ratio


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
