"""The image's root filesystem, seen from outside: safe file access and per-OS differences.

Paths are resolved inside the root (symlinks included, absolute ones taken
relative to the root), so an image cannot make us write to the host. Owners
are the image's uids from its own /etc/passwd. Nothing in the image runs.
"""

import os
import secrets
import stat
from dataclasses import dataclass

from snf_ganeti.errors import CustomizationError

_MAX_LINKS = 40


@dataclass(frozen=True)
class User:
    """A user of the image, from its own /etc/passwd: uid, gid and home inside the image."""

    name: str
    uid: int
    gid: int
    home: str


def resolve(root, path, task):
    """The host path of the image's ``path``, never leaving ``root`` (like RESOLVE_IN_ROOT)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done, links = [], 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if os.path.islink(candidate):
            links += 1
            if links > _MAX_LINKS:
                raise CustomizationError(task, f"too many symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return os.path.join(root, *done)


class LinuxGuest:
    """A Linux root filesystem mounted at ``root``."""

    family = "linux"

    def __init__(self, root, task="customize"):
        self.root, self.task = root, task

    def path(self, path):
        return resolve(self.root, path, self.task)

    def exists(self, path):
        return os.path.lexists(self.path(path))

    def isdir(self, path):
        return os.path.isdir(self.path(path))

    def read(self, path):
        with open(self.path(path), encoding="utf-8", errors="surrogateescape") as stream:
            return stream.read()

    def write(self, path, data, mode=0o644, uid=0, gid=0):
        """Replace ``path`` atomically (temp file + rename) with ``data`` (str or bytes)."""
        target = self.path(path)
        if os.path.isdir(target):
            raise CustomizationError(self.task, f"{path} exists in the image as a directory")
        tmp = f"{target}.snf-{secrets.token_hex(4)}"
        payload = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, payload)
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, target)

    def keep_mode(self, path, default=0o644):
        """(mode, uid, gid) of an existing file, for rewriting it as it was."""
        try:
            st = os.lstat(self.path(path))
            return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        except FileNotFoundError:
            return default, 0, 0

    def rewrite(self, path, data):
        mode, uid, gid = self.keep_mode(path)
        self.write(path, data, mode, uid, gid)

    def makedirs(self, path, mode, uid=0, gid=0):
        """Create missing directories of ``path`` with ``mode`` and owner; refuse non-dirs."""
        current = "/"
        for part in [p for p in path.split("/") if p]:
            current = os.path.join(current, part)
            host = self.path(current)
            if os.path.lexists(host) and not os.path.isdir(host):
                raise CustomizationError(self.task, f"{current} exists in the image and is "
                                                    "not a directory")
            if not os.path.exists(host):
                os.mkdir(host, mode)
                os.chown(host, uid, gid, follow_symlinks=False)
                os.chmod(host, mode)

    def remove(self, path):
        os.unlink(self.path(path))

    def listdir(self, path):
        host = self.path(path)
        return sorted(os.listdir(host)) if os.path.isdir(host) else []

    # -- the image's accounts ---------------------------------------------------------------

    def users(self):
        users = {}
        for line in self._lines("/etc/passwd"):
            fields = line.split(":")
            if len(fields) >= 6 and fields[2].isdigit() and fields[3].isdigit():
                users[fields[0]] = User(fields[0], int(fields[2]), int(fields[3]), fields[5])
        return users

    def groups(self):
        groups = {}
        for line in self._lines("/etc/group"):
            fields = line.split(":")
            if len(fields) >= 3 and fields[2].isdigit():
                groups[fields[0]] = int(fields[2])
        return groups

    def _lines(self, path):
        return self.read(path).splitlines() if self.exists(path) else []

    # -- what differs between distributions ---------------------------------------------------

    def distro(self):
        for marker, name in (("/etc/debian_version", "debian"), ("/etc/redhat-release", "redhat"),
                             ("/etc/SuSE-release", "suse"), ("/etc/arch-release", "arch"),
                             ("/etc/alpine-release", "alpine")):
            if self.exists(marker):
                return name
        for line in self._lines("/etc/os-release"):
            if line.startswith("ID="):
                return line[3:].strip('"')
        return "unknown"

    def hostname_file(self):
        if self.exists("/etc/hostname"):
            return "/etc/hostname"
        return {"redhat": None, "suse": "/etc/HOSTNAME", "gentoo": "/etc/conf.d/hostname"}.get(
            self.distro(), "/etc/hostname")


def guest_for(osfamily, root, task):
    if osfamily != "linux":
        raise CustomizationError(task, f"OSFAMILY {osfamily!r} cannot be customized here "
                                       "(only linux); exclude the tasks with EXCLUDE_ALL_TASKS")
    return LinuxGuest(root, task)
