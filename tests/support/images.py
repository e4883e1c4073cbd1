"""Small test images built at test time: a static busybox root on ext4, xfs or btrfs.

``build(kind, fstype, directory)`` returns the image file (diskdump: an msdos
disk with the filesystem as partition 1 at sector 2048; extdump: the bare
filesystem; qcow2: the diskdump converted). ``Inspect`` mounts a deployed disk
read-only for the assertions and undoes everything afterwards.
"""

import contextlib
import os
import shutil
import subprocess
import uuid

SIZES = {"ext4": 48, "xfs": 304, "btrfs": 120}  # MiB: the filesystem tools' minimums
PASSWD = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"
GROUP = "root:x:0:\nuser:x:1000:\nstaff:x:50:\n"
SHADOW = "root:*:19000:0:99999:7:::\nuser:!:19000:0:99999:7:::\n"
OLD_MACHINE_ID = "0123456789abcdef0123456789abcdef"
STACK_DIRS = {"ifupdown": "etc/network", "netplan": "etc/netplan",
              "systemd-networkd": "etc/systemd/network", "NetworkManager": "etc/NetworkManager"}


def sh(*argv, **kwargs):
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True,
                          **kwargs).stdout


def busybox_root(root, fstype, fs_uuid, stack="ifupdown"):
    for d in ("bin", "sbin", "etc/ssh", "root", "home/user", "tmp", "proc", "sys", "dev",
              "var/lib/dbus", STACK_DIRS[stack]):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
    files = {"etc/debian_version": "12.0\n", "etc/hostname": "template\n",
             "etc/hosts": "127.0.0.1\tlocalhost\n127.0.1.1\ttemplate\n",
             "etc/passwd": PASSWD, "etc/group": GROUP, "etc/shadow": SHADOW,
             "etc/machine-id": OLD_MACHINE_ID + "\n",
             "var/lib/dbus/machine-id": OLD_MACHINE_ID + "\n",
             "etc/ssh/sshd_config": "PermitRootLogin yes\n",
             "etc/ssh/ssh_host_rsa_key": "old", "etc/ssh/ssh_host_rsa_key.pub": "old",
             "etc/ssh/ssh_host_ed25519_key": "old", "etc/ssh/ssh_host_ed25519_key.pub": "old",
             "etc/fstab": f"UUID={fs_uuid} / {fstype} defaults 0 1\n"}
    if stack == "ifupdown":
        files["etc/network/interfaces"] = "auto lo\niface lo inet loopback\n"
    for name, text in files.items():
        with open(os.path.join(root, name), "w") as stream:
            stream.write(text)
    os.chmod(os.path.join(root, "etc/shadow"), 0o640)
    os.chown(os.path.join(root, "home/user"), 1000, 1000)


def filesystem(path, fstype, root, fs_uuid):
    with open(path, "wb") as stream:
        stream.truncate(SIZES[fstype] << 20)
    if fstype == "ext4":
        sh("mkfs.ext4", "-q", "-F", "-U", fs_uuid, "-L", "root", "-d", root, path)
    elif fstype == "btrfs":
        sh("mkfs.btrfs", "-q", "-f", "-U", fs_uuid, "--rootdir", root, path)
    else:
        sh("mkfs.xfs", "-q", "-f", "-m", f"uuid={fs_uuid}", path)
        with mounted_file(path) as target:
            sh("cp", "-a", f"{root}/.", target)


@contextlib.contextmanager
def mounted_file(path, options="rw"):
    target = f"{path}.mnt"
    os.makedirs(target, exist_ok=True)
    sh("mount", "-o", f"loop,{options}", path, target)
    try:
        yield target
    finally:
        sh("umount", target)
        os.rmdir(target)


def diskdump(path, fs_path, label="dos"):
    fs_size = os.path.getsize(fs_path)
    with open(path, "wb") as stream:
        stream.truncate(fs_size + (2 << 20))
    sh("sfdisk", "-q", path, input=f"label: {label}\nstart=2048, size={fs_size // 512}, "
                                   f"type={'83' if label == 'dos' else 'L'}\n")
    sh("dd", f"if={fs_path}", f"of={path}", "bs=1M", "seek=1", "conv=notrunc,sparse",
       "status=none")


def build(kind, fstype, directory, stack="ifupdown", label="dos"):
    """An image of ``kind`` (diskdump, extdump, qcow2) with a busybox root on ``fstype``."""
    fs_uuid = str(uuid.uuid4())
    root = os.path.join(directory, "root")
    busybox_root(root, fstype, fs_uuid, stack)
    fs_path = os.path.join(directory, f"root.{fstype}")
    filesystem(fs_path, fstype, root, fs_uuid)
    shutil.rmtree(root)
    if kind == "extdump":
        return fs_path
    disk = os.path.join(directory, f"image.{fstype}.diskdump")
    diskdump(disk, fs_path, label)
    os.unlink(fs_path)
    if kind == "qcow2":
        out = disk[:-len("diskdump")] + "qcow2"
        sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", disk, out)
        os.unlink(disk)
        return out
    return disk


class Inspect:
    """A deployed disk attached (loop + partx) for looking at; ``close()`` undoes it."""

    def __init__(self, disk):
        self.loop = sh("losetup", "--find", "--show", disk).strip()
        self.mounts = []
        # partx -u first: a loop device's partition nodes can outlive an earlier attachment
        for action in ("-u", "-a"):
            subprocess.run(["partx", action, self.loop], capture_output=True)

    def partition(self, number=1):
        return f"{self.loop}p{number}"

    def table(self):
        import json
        return json.loads(sh("sfdisk", "--json", self.loop))["partitiontable"]

    def fsck(self, number=1):
        """Run the filesystem's checker read-only; returns its exit code."""
        dev = self.partition(number)
        fstype = sh("blkid", "-o", "value", "-s", "TYPE", dev).strip()
        argv = {"ext4": ["e2fsck", "-f", "-n", dev], "xfs": ["xfs_repair", "-n", dev],
                "btrfs": ["btrfs", "check", "--readonly", dev]}[fstype]
        return subprocess.run(argv, capture_output=True).returncode

    def mount(self, number=1):
        target = f"/run/snft-inspect-{os.path.basename(self.loop)}-{number}"
        os.makedirs(target, exist_ok=True)
        fstype = sh("blkid", "-o", "value", "-s", "TYPE", self.partition(number)).strip()
        options = "ro,norecovery" if fstype == "xfs" else "ro"
        sh("mount", "-o", options, self.partition(number), target)
        self.mounts.append(target)
        return target

    def close(self):
        for target in reversed(self.mounts):
            subprocess.run(["umount", target], capture_output=True)
            os.rmdir(target)
        subprocess.run(["partx", "-d", self.loop], capture_output=True)
        subprocess.run(["losetup", "-d", self.loop], capture_output=True)
