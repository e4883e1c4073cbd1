"""The configuration file as parsed, cached so commands need not import or run YAML.

Ganeti runs ``snf-ganeti`` for every hook, NIC and OS script; importing PyYAML alone
costs about 14 ms of each. The cache holds the parsed data of one file (validation still
runs on every load), keyed by its path and its stat: device, inode, size, mtime and
ctime. Any edit, replacement or ``touch`` changes the key. A file changed less than
``SETTLE_SECONDS`` before it was read is not cached: a second edit within the same
timestamp tick would keep the key (git's "racily clean" files).

The cache is ``marshal`` data (no import cost), written atomically, mode 0600 (the
configuration holds the broker's password); a cache file another user owns or could
have written is ignored. Any problem with the cache means parsing the file: it is never
an error.
"""

import marshal
import os
import stat as stat_mod
import sys

SETTLE_SECONDS = 2.0
# Part of the key: bump it when the same text would parse differently (another loader).
FORMAT = 1


def key(path, stat):
    return (FORMAT, sys.version_info[:2], os.path.abspath(path), stat.st_dev, stat.st_ino,
            stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def read(cache_path, path, stat):
    """The cached parse of ``path`` (whose fstat is ``stat``), or None."""
    try:
        with open(cache_path, "rb") as stream:
            own = os.fstat(stream.fileno())
            if own.st_uid != os.geteuid() or own.st_mode & 0o022:
                return None
            cached_key, data = marshal.load(stream)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return data if cached_key == key(path, stat) and isinstance(data, dict) else None


def write(cache_path, path, stat, data, read_at):
    """Cache ``data`` as the parse of ``path``, read from time ``read_at`` on (taken before
    the fstat that gave ``stat``), if the file had settled and marshal can hold ``data``."""
    if not stat_mod.S_ISREG(stat.st_mode) or \
            read_at - max(stat.st_mtime, stat.st_ctime) < SETTLE_SECONDS:
        return False
    try:
        blob = marshal.dumps((key(path, stat), data))
    except ValueError:  # a type marshal cannot hold (a YAML date): parse every time
        return False
    partial = f"{cache_path}.{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(cache_path), mode=0o755, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:  # not root, a read-only /run: the next command parses again
        return False
    try:
        with open(fd, "wb") as stream:
            stream.write(blob)
        os.replace(partial, cache_path)
    except OSError:
        _unlink(partial)  # ours: never leave a copy of the password behind
        return False
    return True


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass
