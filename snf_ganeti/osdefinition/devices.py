"""The instance's disk as a loop device with partition nodes, and the mounts made on it.

The disk (a file or a block device) is attached to its own loop device, so
that partitions get nodes (``partx -a``; no device-mapper needed) whatever the
disk is. Everything attached or mounted is undone by ``close()``, in reverse.
"""

import json
import os

from snf_ganeti.errors import CustomizationError
from snf_ganeti.osdefinition.commands import run

MOUNT_OPTIONS = "nosuid,nodev,noexec"


class Disk:
    """A disk attached as ``self.device``; ``task`` names who is asking, for errors."""

    def __init__(self, path):
        self.path = path
        self.device = None
        self._mounts = []

    def attach(self):
        self.device = run(["losetup", "--find", "--show", "--direct-io=off", self.path],
                          self._error).strip()
        self.scan()
        return self

    def _error(self, text):
        return CustomizationError("disk", text)

    def table(self):
        """sfdisk's view of the partition table: {label, sectorsize, partitions: [...]}."""
        out = run(["sfdisk", "--json", self.device], lambda text: CustomizationError(
            "disk", f"unable to read the partition table of the image; it seems corrupted "
                    f"({text})"))
        return json.loads(out)["partitiontable"]

    def sectors(self):
        return int(run(["blockdev", "--getsz", self.device], self._error))

    def partition(self, number):
        return f"{self.device}p{number}"

    def scan(self):
        """Create (or update) the partition nodes; -u also fixes nodes an earlier user left."""
        run(["partx", "-u", self.device], self._error, ok=(0, 1))
        run(["partx", "-a", self.device], self._error, ok=(0, 1))

    def fstype(self, device):
        return run(["blkid", "-o", "value", "-s", "TYPE", device], self._error,
                   ok=(0, 2)).strip()

    def mount(self, device, target, readonly=False, task="MountImage"):
        os.makedirs(target, exist_ok=True)
        options = MOUNT_OPTIONS + (",ro" if readonly else "")
        if self.fstype(device) == "xfs":
            options += ",nouuid"  # another instance of the same image may be mounted now
        run(["mount", "-o", options, device, target],
            lambda text: CustomizationError(task, f"cannot mount {device}: {text}"))
        self._mounts.append(target)

    def unmount_all(self):
        while self._mounts:
            target = self._mounts.pop()
            run(["umount", target], self._error)

    def close(self):
        """Unmount and detach; best effort, so one failure does not keep the rest attached."""
        problems = []
        for step in (self.unmount_all, self._detach):
            try:
                step()
            except CustomizationError as err:
                problems.append(str(err))
        if problems:
            raise CustomizationError("cleanup", "; ".join(problems))

    def _detach(self):
        if self.device:
            run(["partx", "-d", self.device], self._error, ok=(0, 1))
            run(["losetup", "-d", self.device], self._error)
            self.device = None

    def __enter__(self):
        return self.attach()

    def __exit__(self, *exc):
        self.close()
