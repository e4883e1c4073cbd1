"""What one hook run does on this node, as plain data."""

from dataclasses import dataclass

from snf_ganeti.frames import eui64
from snf_ganeti.ganeti.tags import firewall_profiles
from snf_ganeti.messages import net_status

# Post hooks after which the instance's NIC configuration is worth announcing.
ANNOUNCED = ("instance-add", "instance-start", "instance-reboot", "instance-modify",
             "instance-migrate", "instance-failover", "instance-rename", "instance-reinstall")
# Post hooks after which the instance no longer runs where it ran: Ganeti 3.0 never calls the
# NIC script's ifdown, so its taps' host state is removed here, on the node that held it.
LEFT_NODE = ("instance-stop", "instance-remove", "instance-migrate", "instance-failover")


@dataclass(frozen=True)
class HookPlan:
    """What one hook run does on this node (each part may be None): the message to publish, and
    the instance whose taps' host state it removes."""

    message: object = None      # a Message to publish, or None
    cleanup: str | None = None  # the instance whose taps' host state this node removes


def plan_hook(env, node, now):
    if env.phase != "post" or not env.instance:
        return HookPlan()
    message = None
    if env.path in ANNOUNCED and node == env.master:
        message = net_status.build(env.new_name or env.instance, nic_records(env), env.path,
                                   node, env.cluster, now)
    return HookPlan(message=message, cleanup=env.instance if _left(env, node) else None)


def _left(env, node):
    """True if the instance ran on ``node`` before the operation and does not any more."""
    if env.path not in LEFT_NODE or node != env.primary:
        return False
    moved = env.path in ("instance-migrate", "instance-failover")
    return not moved or env.new_primary not in (None, node)


def nic_records(env):
    profiles = firewall_profiles(env.tags, env.nics)
    records = []
    for nic in env.nics:
        network = nic.network
        ipv6 = eui64(nic.mac, network.subnet6) if network else None
        records.append({
            "index": nic.index, "name": nic.name, "uuid": nic.uuid, "mac": nic.mac,
            "ip": str(nic.ip) if nic.ip else None, "ipv6": str(ipv6) if ipv6 else None,
            "mode": nic.mode, "link": nic.link, "network": network.name if network else None,
            **({"firewall": profiles[nic.index]} if nic.index in profiles else {})})
    return records
