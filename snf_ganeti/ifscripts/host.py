"""The links, rules, routes and neighbour proxies of one NIC (iproute2's ``ip``).

``setup`` applies the link part of a NicPlan and returns what it did, as a
plain dict for the NIC's state file; ``cleanup`` undoes exactly what a state
dict records (tap names are reused: ifup starts from a clean slate). Routed
NICs share one policy rule per link (``fwmark`` of the link, set by the
firewall on every packet from its taps): a per-NIC ``iif`` rule would make
every routed packet walk one rule per NIC.

Every change goes through :mod:`snf_ganeti.ifscripts.iproute` (why ``ip`` and not
pyroute2 is said there), except a private network's bridge and its VLAN or VXLAN port:
made once per network and node, through pyroute2 and the netlink request
``port_request`` builds.
"""

import logging
import os
import socket

from snf_ganeti import pathutils
from snf_ganeti.errors import EnvVarError, HostError
from snf_ganeti.ifscripts import announce, iproute

log = logging.getLogger(__name__)
# The priority of a link's rule: pyroute2's default, which made these rules before (an
# upgraded node must find and remove them), and below the main table's 32766.
LINK_RULE_PRIORITY = "32000"
FAMILIES = {socket.AF_INET: "-4", socket.AF_INET6: "-6"}


def port_request(private, uplink, parent_index, network_config):
    """The netlink request creating a private bridge's VLAN or VXLAN port (pure)."""
    if private.transport == "vlan":
        return {"ifname": f"{uplink[:10]}.{private.segment}", "kind": "vlan",
                "link": parent_index, "vlan_id": private.segment}
    return {"ifname": f"vxlan{private.segment}", "kind": "vxlan", "vxlan_id": private.segment,
            "vxlan_link": parent_index, "vxlan_group": network_config.vxlan_group,
            "vxlan_port": network_config.vxlan_port}


class Host:
    """The node's side of its NICs, for one ifup or ifdown."""

    def __init__(self, network_config):
        self.config = network_config
        self._macs = {}  # uplinks' addresses: both families' are usually the same device

    @staticmethod
    def require_tap(tap):
        if iproute.link(tap) is None:
            raise EnvVarError("INTERFACE", f"{tap!r}: no such network interface on this node")

    # -- setup ------------------------------------------------------------------

    def setup(self, plan, state=None):
        """Plumb ``plan``'s tap (which ``require_tap`` found) into the host; returns
        ``state``, where what is done is recorded as it goes: after a failure part-way,
        ``cleanup(tap, state)`` undoes what was done."""
        state = {} if state is None else state
        state.update(tap=plan.tap, mode=plan.mode)
        if plan.mode == "bridged":
            self._bridged(plan, state)
        elif plan.mode == "routed":
            self._routed(plan, state)
        return state

    def _bridged(self, plan, state):
        if plan.private is not None:
            self.ensure_private_bridge(plan.private)
        bridge = iproute.link(plan.bridge)
        if bridge is None:
            raise HostError(f"LINK: bridge {plan.bridge!r} does not exist on this node")
        iproute.run("link", "set", "dev", plan.tap, "mtu", str(bridge["mtu"]),
                    "master", plan.bridge, "up")
        state["bridge"] = plan.bridge

    def _routed(self, plan, state):
        routed, tap = plan.routed, plan.tap
        table = routed.table
        _sysctl(f"ipv4/conf/{tap}/proxy_arp", "1")
        # Neighbour solicitations from the VM are answered by dhcpd, not the kernel.
        _sysctl(f"ipv6/conf/{tap}/proxy_ndp", "0", missing_ok=True)
        # rp_filter's reverse lookup must see the mark too, or it cannot find the table.
        _sysctl(f"ipv4/conf/{tap}/src_valid_mark", "1")
        state.update(table=table, mark=routed.mark, routes=[
            f"{address}/{length}" for address, length in ((routed.ipv4, 32), (routed.ipv6, 128))
            if address])
        self.ensure_link_rule(table, routed.mark)
        # The link first: the kernel refuses an IPv4 route through a device that is down.
        # Scope global, as pyroute2 made them: the host's own packets to the VM keep a
        # global source address.
        iproute.batch([["link", "set", "dev", tap, "up"]] +
                      [["route", "replace", dst, "dev", tap, "table", str(table), "proto",
                        "static", "scope", "global"] for dst in state["routes"]])
        with announce.Announcer() as announcer:
            uplink = self.uplink(table, socket.AF_INET) if routed.ipv4 else None
            if uplink:
                announcer.send(uplink, announce.garp_frames(self.mac_of(uplink), routed.ipv4))
            if routed.ipv6 is not None:
                uplink6 = self.uplink(table, socket.AF_INET6)
                if uplink6:
                    state["proxy_ndp"] = {"address": str(routed.ipv6), "dev": uplink6}
                    iproute.run("-6", "neigh", "replace", "proxy", str(routed.ipv6),
                                "dev", uplink6)
                    announcer.send(uplink6, announce.na_frames(self.mac_of(uplink6), routed.ipv6))

    @staticmethod
    def uplink(table, family):
        """The device of the default route in ``table`` (where the real gateway is)."""
        for route in iproute.show(FAMILIES[family], "route", "show", "table", str(table),
                                  "default"):
            if route.get("dev"):
                return route["dev"]
        return None

    def mac_of(self, name):
        if name not in self._macs:
            self._macs[name] = (iproute.link(name) or {}).get("address")
        return self._macs[name]

    def ensure_private_bridge(self, private):
        """Create (once) the bridge and its VLAN or VXLAN port for a private network."""
        if iproute.link(private.name) is not None:
            return
        uplink = self.config.private_uplink or self.uplink(254, socket.AF_INET)
        parent = iproute.link(uplink) if uplink else None
        if parent is None:
            raise HostError(f"network.private_uplink: no device {uplink!r} to carry {private.name}")
        from snf_ganeti.ifscripts import netlink  # pyroute2: only here, once per network
        netlink.create_bridge(private.name, port_request(private, uplink, parent["ifindex"],
                                                         self.config))

    # -- cleanup ----------------------------------------------------------------

    @staticmethod
    def _link_rule(command, table, mark, family, **ok):
        iproute.run(FAMILIES[family], "rule", command, "priority", LINK_RULE_PRIORITY,
                    "fwmark", f"{mark:#x}/0xffffffff", "table", str(table), **ok)

    def ensure_link_rule(self, table, mark):
        """One policy rule per link and family: packets carrying its mark use its table."""
        for family in FAMILIES:
            self._link_rule("add", table, mark, family, ok=iproute.EXISTS)

    def remove_link_rule(self, table, mark):
        for family in FAMILIES:
            self._link_rule("del", table, mark, family, ok=iproute.MISSING)

    def cleanup(self, tap, state):
        """Remove what ``state`` says ifup made for ``tap``; without a state, search for it.
        Routes through a tap that is gone went with it."""
        state = state or {}
        table = state.get("table")
        if table is not None:
            routes = state.get("routes")
            if routes is None:  # a state from before routes were recorded
                routes = [r["dst"] for flag in FAMILIES.values() for r in
                          iproute.show(flag, "route", "show", "table", str(table), "dev", tap)]
            for dst in routes:
                iproute.run("route", "del", dst, "dev", tap, "table", str(table),
                            ok=iproute.MISSING)
        if table is not None and "mark" not in state:  # ifup of a version with iif rules
            self._remove_iif_rules(tap)
        proxy = state.get("proxy_ndp")
        if proxy:
            iproute.run("-6", "neigh", "del", "proxy", proxy["address"], "dev", proxy["dev"],
                        ok=iproute.MISSING)

    @staticmethod
    def _remove_iif_rules(tap):
        for flag in FAMILIES.values():
            for rule in iproute.show(flag, "rule", "show"):
                if rule.get("iif") == tap and "table" in rule:  # ours name a table
                    iproute.run(flag, "rule", "del", "priority", str(rule["priority"]),
                                "iif", tap, "table", str(rule["table"]), ok=iproute.MISSING)


def _sysctl(key, value, missing_ok=False):
    path = os.path.join(pathutils.PROC_SYS_NET, key)
    try:
        with open(path, "w") as stream:
            stream.write(value)
    except FileNotFoundError:
        if not missing_ok:
            raise HostError(f"{path}: no such setting") from None
