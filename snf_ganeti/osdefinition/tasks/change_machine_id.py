"""ChangeMachineId: a fresh machine-id, so clones of one image are distinct machines."""

import secrets

from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="ChangeMachineId",
    description="Writes a new random machine-id to /etc/machine-id and /var/lib/dbus/machine-id, "
                "where the image has them.")
FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def run(ctx):
    machine_id = secrets.token_hex(16)
    present = [path for path in FILES if ctx.guest.exists(path)]
    if not present:
        ctx.warn("The image has no machine-id file; none was written.")
    for path in present:
        ctx.guest.rewrite(path, machine_id + "\n")
