"""AddSwap: format the swap partition FixPartitionTable made and add it to /etc/fstab."""

from snf_ganeti.errors import CustomizationError
from snf_ganeti.osdefinition import commands
from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="AddSwap",
    description="With the SWAP property, formats the swap partition (`mkswap`) and adds "
                "`UUID=<uuid> none swap sw 0 0` to /etc/fstab.",
    examples=(('{"SWAP": "2:512"}', "partition 2 becomes swap, listed in /etc/fstab"),))


def run(ctx):
    if ctx.swap_partition is None:
        ctx.warn("No swap partition defined")
        return
    device = ctx.disk.partition(ctx.swap_partition)
    commands.run(["mkswap", device], lambda text: CustomizationError(TASK.name, text))
    uuid = commands.run(
        ["blkid", "-o", "value", "-s", "UUID", device],
        lambda text: CustomizationError(TASK.name, text)).strip()
    if not ctx.guest.exists("/etc/fstab"):
        raise CustomizationError(TASK.name, "/etc/fstab file is missing")
    fstab = ctx.guest.read("/etc/fstab").rstrip("\n")
    ctx.guest.rewrite("/etc/fstab", f"{fstab}\nUUID={uuid} none swap sw 0 0\n")
