"""FilesystemResizeUnmounted: check and grow an ext2/3/4 filesystem to its partition."""

from snf_ganeti.errors import CustomizationError
from snf_ganeti.osdefinition import commands
from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="FilesystemResizeUnmounted",
    description="Checks (`e2fsck -f -p`) and grows (`resize2fs`) an ext2/3/4 filesystem on the "
                "grown partition. xfs and btrfs grow later, mounted.",
    mounted=False, resize=True)
EXT = ("ext2", "ext3", "ext4")


def run(ctx):
    if ctx.resize_partition is None:
        ctx.warn("No partition was grown; nothing to resize.")
        return
    device = ctx.disk.partition(ctx.resize_partition)
    fstype = ctx.disk.fstype(device)
    if fstype not in EXT:
        if fstype not in ("xfs", "btrfs"):
            ctx.warn(f"Don't know how to resize partition {ctx.resize_partition} "
                     f"({fstype or 'no filesystem'}).")
        return
    fsck(device, ctx.resize_partition)
    commands.run(["resize2fs", device], lambda text: CustomizationError(TASK.name, text))


def fsck(device, number):
    # e2fsck: 0 clean, 1 errors fixed; anything else means the filesystem is damaged.
    commands.run(["e2fsck", "-f", "-p", device], lambda text: CustomizationError(
        TASK.name, f"the filesystem of partition {number} is corrupt: {text}"), ok=(0, 1))
