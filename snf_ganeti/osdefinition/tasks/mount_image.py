"""MountImage: find the root partition and mount it (nosuid, nodev, noexec)."""

import os

from snf_ganeti.errors import CustomizationError
from snf_ganeti.osdefinition.customize import TaskInfo
from snf_ganeti.osdefinition.guest import guest_for

TASK = TaskInfo(
    name="MountImage",
    description="Mounts the root partition (image property ROOT_PARTITION, else the first "
                "partition with an ext2/3/4, xfs or btrfs filesystem holding /etc/fstab) with "
                "nosuid, nodev and noexec. The root must contain /etc.",
    examples=(('{"ROOT_PARTITION": "2", "OSFAMILY": "linux"}', "mount partition 2"),),
    excludable=False)
LINUX_FS = ("ext2", "ext3", "ext4", "xfs", "btrfs")


def run(ctx):
    ctx.target = os.path.join(ctx.workdir, "root")
    number = _root_partition(ctx)
    device = ctx.disk.partition(number)
    if not os.path.exists(device):
        raise CustomizationError(TASK.name, f"root partition {number} does not exist "
                                            f"(image property ROOT_PARTITION={number})")
    ctx.disk.mount(device, ctx.target, task=TASK.name)
    ctx.root_partition = number
    family = (ctx.prop("OSFAMILY") or "linux").lower()
    ctx.guest = guest_for(family, ctx.target, TASK.name)
    if not ctx.guest.isdir("/etc"):
        raise CustomizationError(TASK.name, f"/etc is missing from root partition {number}; "
                                            "check the image property ROOT_PARTITION")


def _root_partition(ctx):
    given = ctx.prop("ROOT_PARTITION")
    if given:
        if not str(given).isdigit():
            raise CustomizationError(TASK.name, f"image property ROOT_PARTITION={given!r} is "
                                                "not a partition number")
        return int(given)
    ctx.warn("Needed image properties are missing. Autodetecting them...")
    probe = os.path.join(ctx.workdir, "probe")
    for part in ctx.disk.table().get("partitions", []):
        number = int(part["node"].rsplit("p", 1)[1])
        if ctx.disk.fstype(part["node"]) not in LINUX_FS:
            continue
        ctx.disk.mount(part["node"], probe, readonly=True, task=TASK.name)
        try:
            found = os.path.isfile(os.path.join(probe, "etc", "fstab"))
        finally:
            ctx.disk.unmount_all()
        if found:
            ctx.warn(f"Detected ROOT_PARTITION: {number}")
            return number
    raise CustomizationError(TASK.name, "image property ROOT_PARTITION is missing and no "
                                        "partition holds a Linux root (/etc/fstab)")
