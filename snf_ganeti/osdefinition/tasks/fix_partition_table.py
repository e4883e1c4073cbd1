"""FixPartitionTable: grow the last partition to the disk (and carve swap if asked)."""

from snf_ganeti.errors import CustomizationError
from snf_ganeti.osdefinition import commands
from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="FixPartitionTable",
    description="Grows the last partition so that it ends 2048 sectors before the end of the "
                "disk (msdos or GPT; a GPT's backup header is moved to the disk's end first). "
                "With the SWAP property `N:MB` a swap partition N of MB MiB is made at the end.",
    examples=(('{"SWAP": "2:512"}', "partition 2 is a 512 MiB swap partition at the disk's end"),),
    mounted=False)
TAIL = 2048
EXTENDED = {"5", "f", "85"}


def number(node):
    return int(node.rsplit("p", 1)[1])


def swap_request(value):
    try:
        num, size = value.split(":")
        num, size = int(num), int(size)
        if num < 1 or size < 1:
            raise ValueError
        return num, size * 2048
    except ValueError:
        raise CustomizationError(TASK.name, f"SWAP property {value!r} is not valid "
                                            "(expected <partition>:<MiB>)") from None


def run(ctx):
    table = ctx.disk.table()
    if table.get("label") not in ("dos", "gpt"):
        raise CustomizationError(TASK.name, f"unsupported partition table type "
                                            f"{table.get('label')!r}; only msdos and GPT")
    parts = [p for p in table.get("partitions", []) if p.get("type", "").lower() not in EXTENDED]
    if not parts:
        raise CustomizationError(TASK.name, "the image's disk contains no partition")
    dev = ctx.disk.device
    if table["label"] == "gpt":
        commands.run(["sfdisk", "--relocate", "gpt-bak-std", dev], _error)
    last = max(parts, key=lambda p: p["start"])
    end = ctx.disk.sectors() - TAIL - 1  # last sector of the grown partition
    if ctx.prop("SWAP"):
        num, sectors = swap_request(ctx.prop("SWAP"))
        end -= sectors
        if end <= last["start"] + last["size"]:
            raise CustomizationError(TASK.name, "not enough space for the swap partition")
        _set(dev, num, f"{end + 1},{sectors},S")
        ctx.swap_partition = num
    if table["label"] == "dos" and number(last["node"]) > 4:
        container = [p for p in table["partitions"] if p["type"].lower() in EXTENDED][0]
        _set(dev, number(container["node"]), f"{container['start']},{end - container['start'] + 1}")
    if end > last["start"] + last["size"] - 1:
        _set(dev, number(last["node"]), f"{last['start']},{end - last['start'] + 1}")
    ctx.disk.scan()
    ctx.resize_partition = number(last["node"])


def _set(dev, num, line):
    commands.run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "-N", str(num), dev], _error,
        input=line + "\n")


def _error(text):
    return CustomizationError(TASK.name, text)

