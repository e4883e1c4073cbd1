"""AssignHostname: the instance's name as hostname, and in /etc/hosts."""

from snf_ganeti.errors import CustomizationError
from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="AssignHostname",
    description="Writes the instance name to /etc/hostname (or the distribution's file) and "
                "makes the `127.0.1.1` line of /etc/hosts name it (adding the line if none).")


def run(ctx):
    if not ctx.hostname:
        raise CustomizationError(TASK.name, "Hostname is missing")
    guest = ctx.guest
    path = guest.hostname_file()
    if path is None:  # RedHat family without /etc/hostname
        network = guest.read("/etc/sysconfig/network") if guest.exists(
            "/etc/sysconfig/network") else ""
        lines = [l for l in network.splitlines() if not l.startswith("HOSTNAME=")]
        guest.rewrite("/etc/sysconfig/network", "\n".join(lines + [f"HOSTNAME={ctx.hostname}"])
                      + "\n")
    else:
        guest.rewrite(path, ctx.hostname + "\n")
    hosts = guest.read("/etc/hosts").splitlines() if guest.exists("/etc/hosts") else []
    entry = f"127.0.1.1\t{ctx.hostname}"
    replaced = [entry if line.startswith("127.0.1.1") else line for line in hosts]
    if entry not in replaced:
        replaced.append(entry)
    guest.rewrite("/etc/hosts", "\n".join(replaced) + "\n")
