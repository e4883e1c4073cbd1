"""DeleteSSHKeys: no two instances of one image share SSH host keys."""

import glob
import os
import tempfile

from snf_ganeti.errors import CustomizationError
from snf_ganeti.osdefinition import commands
from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="DeleteSSHKeys",
    description="Deletes the image's SSH host keys (/etc/ssh/ssh_host_* and HostKey files of "
                "sshd_config). If the image has sshd_config, new keys of the same types are "
                "made with the host's ssh-keygen (never the image's) and copied in.")


def run(ctx):
    guest = ctx.guest
    keys = {f"/etc/ssh/{name}" for name in guest.listdir("/etc/ssh")
            if name.startswith("ssh_host_")}
    config = guest.read("/etc/ssh/sshd_config") if guest.exists("/etc/ssh/sshd_config") else None
    for line in (config or "").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].lower() == "hostkey" and words[1].startswith("/"):
            keys.update(p for p in (words[1], words[1] + ".pub") if guest.exists(p))
    for path in sorted(keys):
        guest.remove(path)
    if config is None:
        ctx.warn("The image has no /etc/ssh/sshd_config; host keys are not regenerated.")
        return
    types = {os.path.basename(p)[len("ssh_host_"):].split("_key")[0] for p in keys
             if os.path.basename(p).startswith("ssh_host_")}
    regenerate(guest, types)


def regenerate(guest, types):
    with tempfile.TemporaryDirectory() as scratch:
        os.makedirs(os.path.join(scratch, "etc", "ssh"))
        commands.run(["ssh-keygen", "-A", "-f", scratch],
                     lambda text: CustomizationError(TASK.name, text))
        for path in glob.glob(os.path.join(scratch, "etc", "ssh", "ssh_host_*")):
            name = os.path.basename(path)
            if types and name[len("ssh_host_"):].split("_key")[0] not in types:
                continue
            with open(path, "rb") as stream:
                mode = 0o644 if name.endswith(".pub") else 0o600
                guest.write(f"/etc/ssh/{name}", stream.read(), mode)
