import logging

import pytest

from tests.support import config_cache

# pika logs every refused connection at ERROR; the tests cause those on purpose.
logging.getLogger("pika").setLevel(logging.CRITICAL)

pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.netns",
    "tests.fixtures.ganeti",
    "tests.fixtures.osdefinition",
    "tests.fixtures.stall",
]

_LEVELS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items):
    """Every test says which level it is, so `-m unit` and friends select correctly."""
    for item in items:
        if not any(item.get_closest_marker(level) for level in _LEVELS):
            raise pytest.UsageError(f"{item.nodeid}: mark it unit, integration or system")


@pytest.fixture(autouse=True)
def _config_cache_per_test():
    with config_cache.left_as_found():
        yield


@pytest.fixture(scope="session", autouse=True)
def _config_cache_per_run():
    # Also after the session's fixtures: a Ganeti cluster's teardown still runs hooks.
    with config_cache.left_as_found():
        yield


_MEASUREMENTS = "snf_measurements"


@pytest.fixture
def measurement(request):
    """``measurement("text")`` adds a line to the run's summary (numbers tests report, such
    as the time to ACK of 200 simultaneous DHCP clients; never asserted on)."""
    lines = _lines(request.config)
    return lambda text: lines.append(f"{request.node.nodeid}: {text}")


def _lines(config):
    if not hasattr(config, _MEASUREMENTS):
        setattr(config, _MEASUREMENTS, [])
    return getattr(config, _MEASUREMENTS)


def pytest_terminal_summary(terminalreporter, config):
    lines = getattr(config, _MEASUREMENTS, [])
    if lines:
        terminalreporter.section("measurements")
        for line in lines:
            terminalreporter.write_line(line)
