"""ConfigureNetwork: the instance's NICs in whichever network stack the image uses."""

import secrets

from snf_ganeti.osdefinition import network
from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="ConfigureNetwork",
    description="Writes the NICs' configuration (eth0, eth1... matched by MAC; DHCP, static "
                "IPv4 from the Ganeti network's subnet and gateway, IPv6 by the network's "
                "tags) for the image's stack: netplan (/etc/netplan), NetworkManager (property "
                "NM_NETWORKING, or /etc/NetworkManager without /etc/network/interfaces), "
                "systemd-networkd (/etc/systemd/network without /etc/network/interfaces) or "
                "ifupdown (/etc/network). An existing /etc/network/interfaces is kept as "
                "interfaces.snf-image-<random>.",
    examples=(('{"NM_NETWORKING": "yes"}', "NetworkManager keyfiles even if ifupdown is there"),))
MODES = {"/etc/NetworkManager/system-connections": 0o600}


def stack(ctx):
    guest = ctx.guest
    if guest.isdir("/etc/netplan"):
        return "netplan"
    ifupdown = guest.exists("/etc/network/interfaces")
    if ctx.flag("NM_NETWORKING") or (guest.isdir("/etc/NetworkManager") and not ifupdown):
        return "NetworkManager"
    if guest.isdir("/etc/systemd/network") and not ifupdown:
        return "systemd-networkd"
    if guest.isdir("/etc/network"):
        return "ifupdown"
    return None


def run(ctx):
    if not ctx.nics:
        ctx.warn("The instance has no NIC; no network configuration written.")
        return
    found = stack(ctx)
    if found is None:
        ctx.warn("Don't know how to configure this image's network (no netplan, "
                 "NetworkManager, systemd-networkd or ifupdown found).")
        return
    plans = network.plan(ctx.nics, ctx.network)
    if found == "ifupdown" and ctx.guest.exists("/etc/network/interfaces"):
        backup = f"/etc/network/interfaces.snf-image-{secrets.token_hex(4)}"
        ctx.guest.write(backup, ctx.guest.read("/etc/network/interfaces"),
                        *ctx.guest.keep_mode("/etc/network/interfaces"))
    for path, text in network.RENDERERS[found](plans).items():
        directory = path.rsplit("/", 1)[0]
        ctx.guest.makedirs(directory, 0o755)
        ctx.guest.write(path, text, MODES.get(directory, 0o644))
    ctx.notes["network_stack"] = found
