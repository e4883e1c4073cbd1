import logging

import pytest

# pika logs every refused connection at ERROR; the tests cause those on purpose.
logging.getLogger("pika").setLevel(logging.CRITICAL)

pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.netns",
    "tests.fixtures.ganeti",
    "tests.fixtures.osdefinition",
]

_LEVELS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items):
    """Every test says which level it is, so `-m unit` and friends select correctly."""
    for item in items:
        if not any(item.get_closest_marker(level) for level in _LEVELS):
            raise pytest.UsageError(f"{item.nodeid}: mark it unit, integration or system")
