"""EnforcePersonality: inject the files of img_personality."""

from snf_ganeti.errors import CustomizationError
from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="EnforcePersonality",
    description="Writes each file of img_personality (a JSON array of {path, contents (base64), "
                "owner, group, mode (decimal)}; owner and group are names in the image, default "
                "root; mode default 288 = 0440). Missing directories are made 0750, owned like "
                "the file. Existing files are replaced.",
    examples=(('[{"path": "/etc/motd", "contents": "aGVsbG8K", "mode": 420}]',
               "/etc/motd contains hello, mode 0644, owned by root"),))


def run(ctx):
    files = ctx.params.personality
    if not files:
        ctx.warn("This image has no personality (0 files to inject)")
        return
    users, groups = ctx.guest.users(), ctx.guest.groups()
    for item in files:
        uid = _lookup(users, item.owner, "owner", item.path).uid
        gid = _lookup(groups, item.group, "group", item.path)
        ctx.guest.makedirs(item.path.rsplit("/", 1)[0] or "/", 0o750, uid, gid)
        ctx.guest.write(item.path, item.contents, item.mode, uid, gid)


def _lookup(table, name, what, path):
    if name not in table:
        raise CustomizationError(TASK.name, f"Unable to inject file: `{path}' to the VM. "
                                            f"File {what}: `{name}' does not exist!")
    return table[name]
