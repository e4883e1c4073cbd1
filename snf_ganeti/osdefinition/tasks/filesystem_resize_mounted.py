"""FilesystemResizeMounted: grow an xfs or btrfs root filesystem, mounted."""

from snf_ganeti.errors import CustomizationError
from snf_ganeti.osdefinition import commands
from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="FilesystemResizeMounted",
    description="Grows an xfs (`xfs_growfs`) or btrfs (`btrfs filesystem resize max`) "
                "filesystem on the grown partition; it must be the mounted root.",
    resize=True)
TOOLS = {"xfs": ["xfs_growfs"], "btrfs": ["btrfs", "filesystem", "resize", "max"]}


def run(ctx):
    if ctx.resize_partition is None:
        return
    fstype = ctx.disk.fstype(ctx.disk.partition(ctx.resize_partition))
    if fstype not in TOOLS:
        return
    if ctx.resize_partition != ctx.root_partition:
        ctx.warn(f"Don't know how to resize the {fstype} partition {ctx.resize_partition}: "
                 "it is not the root partition.")
        return
    commands.run([*TOOLS[fstype], ctx.target], lambda text: CustomizationError(TASK.name, text))
