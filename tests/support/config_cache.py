"""The configuration's parse cache left as it was found, by tests and benchmarks alike."""

import contextlib
import os

from snf_ganeti import pathutils


@contextlib.contextmanager
def left_as_found():
    """Commands run as root cache their configuration's parse in /run/snf-ganeti
    (snf_ganeti/configcache.py): what was created there meanwhile goes."""
    had_dir, had_cache = os.path.isdir(pathutils.RUN_DIR), os.path.exists(pathutils.CONFIG_CACHE)
    try:
        yield
    finally:
        discard(cache=not had_cache, directory=not had_dir)


def discard(cache=True, directory=True):
    """Remove the parse cache, and its directory if that is then empty (anything else there
    is not the cache's)."""
    with contextlib.suppress(OSError):
        if cache:
            os.unlink(pathutils.CONFIG_CACHE)
    with contextlib.suppress(OSError):
        if directory:
            os.rmdir(pathutils.RUN_DIR)
