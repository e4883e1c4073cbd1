"""Ganeti's ssconf files: ``<data_dir>/ssconf_<key>``, one value or one per line.

Every call reads the file again: the master can fail over while we run, and
Ganeti replaces these files atomically, so a fresh read is always consistent.
"""

import re
import socket

from snf_ganeti import pathutils
from snf_ganeti.errors import SsconfError

_KEY_RE = re.compile(r"[a-z0-9_]+")

# Ganeti's own reader refuses larger files (lib/ssconf.py _MAX_SIZE).
_MAX_SIZE = 128 * 1024


def this_node(configured):
    """This node's name as Ganeti knows it: ``configured`` (``eventd.node_name``) when set,
    else the host's FQDN, which is how Ganeti names its nodes."""
    return configured or socket.getfqdn()


class Ssconf:
    def __init__(self, data_dir=pathutils.GANETI_DATA_DIR):
        self.data_dir = str(data_dir)

    def path(self, key):
        if not _KEY_RE.fullmatch(key):
            raise ValueError(f"not an ssconf key: {key!r}")
        return pathutils.ssconf_file(self.data_dir, key)

    def read(self, key):
        """The text of ``ssconf_<key>`` with surrounding whitespace removed.

        List-valued keys (instance_list, networks, ...) are legitimately
        empty files when there is nothing to list.
        """
        path = self.path(key)
        try:
            with open(path, "rb") as f:
                raw = f.read(_MAX_SIZE + 1)
        except FileNotFoundError:
            raise SsconfError(path, "missing (is this node part of a Ganeti cluster?)") from None
        except OSError as err:
            raise SsconfError(path, f"cannot read: {err.strerror}") from None
        if len(raw) > _MAX_SIZE:
            raise SsconfError(path, f"larger than {_MAX_SIZE} bytes")
        try:
            return raw.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise SsconfError(path, f"not UTF-8 (bad byte at offset {err.start})") from None

    def get(self, key):
        """The value of ``ssconf_<key>``, which must not be empty."""
        value = self.read(key)
        if not value:
            raise SsconfError(self.path(key), "empty")
        return value

    def get_single(self, key):
        """A value that must be one line, such as a node or cluster name."""
        value = self.get(key)
        if len(value.splitlines()) > 1:
            raise SsconfError(self.path(key), "expected one line, found several")
        return value

    def get_lines(self, key, allow_empty=True):
        """The non-blank lines of a list-valued key such as ``instance_list``."""
        text = self.read(key) if allow_empty else self.get(key)
        return tuple(line.strip() for line in text.splitlines() if line.strip())

    def master_node(self):
        return self.get_single("master_node")

    def cluster_name(self):
        return self.get_single("cluster_name")

    def node_list(self):
        # A cluster always has at least its master node.
        return self.get_lines("node_list", allow_empty=False)
