"""The links, rules, routes and neighbour proxies of one NIC (pyroute2, netlink).

``setup`` applies the link part of a NicPlan and returns what it did, as a
plain dict for the NIC's state file; ``cleanup`` undoes exactly what a state
dict records (tap names are reused: ifup starts from a clean slate). Routed
NICs share one policy rule per link (``fwmark`` of the link, set by the
firewall on every packet from its taps): a per-NIC ``iif`` rule would make
every routed packet walk one rule per NIC.
"""

import logging
import os
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import ndmsg

from snf_ganeti import pathutils
from snf_ganeti.errors import EnvVarError, SnfGanetiError
from snf_ganeti.ifscripts import announce

log = logging.getLogger(__name__)


class HostError(SnfGanetiError):
    """The host refused a change (one line naming the object)."""


def port_request(private, uplink, parent_index, network_config):
    """The netlink request creating a private bridge's VLAN or VXLAN port (pure)."""
    if private.transport == "vlan":
        return {"ifname": f"{uplink[:10]}.{private.segment}", "kind": "vlan",
                "link": parent_index, "vlan_id": private.segment}
    return {"ifname": f"vxlan{private.segment}", "kind": "vxlan", "vxlan_id": private.segment,
            "vxlan_link": parent_index, "vxlan_group": network_config.vxlan_group,
            "vxlan_port": network_config.vxlan_port}


class Host:
    """One netlink socket; use as a context manager."""

    def __init__(self, network_config):
        self.config = network_config
        self.ipr = IPRoute()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.ipr.close()

    def index(self, name):
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def require_tap(self, tap):
        index = self.index(tap)
        if index is None:
            raise EnvVarError("INTERFACE", f"{tap!r}: no such network interface on this node")
        return index

    # -- setup ------------------------------------------------------------------

    def setup(self, plan):
        tap = self.require_tap(plan.tap)
        state = {"tap": plan.tap, "mode": plan.mode}
        if plan.mode == "bridged":
            state.update(self._bridged(plan, tap))
        elif plan.mode == "routed":
            state.update(self._routed(plan, tap))
        return state

    def _bridged(self, plan, tap):
        if plan.private is not None:
            self.ensure_private_bridge(plan.private)
        bridge = self.index(plan.bridge)
        if bridge is None:
            raise HostError(f"LINK: bridge {plan.bridge!r} does not exist on this node")
        mtu = self.ipr.get_links(bridge)[0].get_attr("IFLA_MTU")
        self._link("set", index=tap, mtu=mtu, master=bridge, state="up")
        return {"bridge": plan.bridge}

    def _routed(self, plan, tap):
        routed = plan.routed
        table = routed.table
        self._link("set", index=tap, state="up")
        _sysctl(f"ipv4/conf/{plan.tap}/proxy_arp", "1")
        # Neighbour solicitations from the VM are answered by dhcpd, not the kernel.
        _sysctl(f"ipv6/conf/{plan.tap}/proxy_ndp", "0", missing_ok=True)
        # rp_filter's reverse lookup must see the mark too, or it cannot find the table.
        _sysctl(f"ipv4/conf/{plan.tap}/src_valid_mark", "1")
        self.ensure_link_rule(table, routed.mark)
        state = {"table": table, "mark": routed.mark, "routes": []}
        for address, family, length in ((routed.ipv4, socket.AF_INET, 32),
                                        (routed.ipv6, socket.AF_INET6, 128)):
            if address is None:
                continue
            self._call(self.ipr.route, "replace", dst=f"{address}/{length}", oif=tap, table=table,
                       proto="static")
            state["routes"].append(f"{address}/{length}")
        with announce.Announcer() as announcer:
            uplink = self.uplink(table, socket.AF_INET) if routed.ipv4 else None
            if uplink:
                announcer.send(uplink, announce.garp_frames(self.mac_of(uplink), routed.ipv4))
            if routed.ipv6 is not None:
                uplink6 = self.uplink(table, socket.AF_INET6)
                if uplink6:
                    self._call(self.ipr.neigh, "add", dst=str(routed.ipv6),
                               ifindex=self.index(uplink6), flags=ndmsg.NTF_PROXY,
                               family=socket.AF_INET6)
                    announcer.send(uplink6, announce.na_frames(self.mac_of(uplink6),
                                                               routed.ipv6))
                    state["proxy_ndp"] = {"address": str(routed.ipv6), "dev": uplink6}
        return state

    def uplink(self, table, family):
        """The device of the default route in ``table`` (where the real gateway is)."""
        for route in self.ipr.get_routes(family=family, table=table):
            if route["dst_len"] == 0 and route.get_attr("RTA_OIF"):
                return self.ipr.get_links(route.get_attr("RTA_OIF"))[0].get_attr("IFLA_IFNAME")
        return None

    def mac_of(self, name):
        return self.ipr.get_links(self.index(name))[0].get_attr("IFLA_ADDRESS")

    def ensure_private_bridge(self, private):
        """Create (once) the bridge and its VLAN or VXLAN port for a private network."""
        if self.index(private.name) is not None:
            return
        uplink = self.config.private_uplink or self.uplink(254, socket.AF_INET)
        parent = self.index(uplink) if uplink else None
        if parent is None:
            raise HostError(f"network.private_uplink: no device {uplink!r} to carry {private.name}")
        request = port_request(private, uplink, parent, self.config)
        port = request["ifname"]
        created = []
        try:
            if self.index(port) is None:
                self._link("add", **request)
                created.append(port)
            self._link("add", ifname=private.name, kind="bridge", br_forward_delay=0)
            created.append(private.name)
            self._link("set", index=self.index(port), master=self.index(private.name), state="up")
            self._link("set", index=self.index(private.name), state="up")
        except HostError:
            for name in reversed(created):  # nothing half done
                self._call(self.ipr.link, "del", index=self.index(name), missing_ok=True)
            raise

    # -- cleanup ----------------------------------------------------------------

    def ensure_link_rule(self, table, mark):
        """One policy rule per link and family: packets carrying its mark use its table."""
        for family in (socket.AF_INET, socket.AF_INET6):
            self._call(self.ipr.rule, "add", family=family, fwmark=mark, fwmask=0xFFFFFFFF,
                       table=table)

    def remove_link_rule(self, table, mark):
        for family in (socket.AF_INET, socket.AF_INET6):
            self._call(self.ipr.rule, "del", family=family, fwmark=mark, fwmask=0xFFFFFFFF,
                       table=table, missing_ok=True)

    def cleanup(self, tap, state):
        """Remove what ``state`` says ifup made for ``tap``; without a state, search for it."""
        state = state or {}
        index = self.index(tap)
        table = state.get("table")
        if index is not None and table is not None:
            routes = state.get("routes")
            if routes is None:  # a state from before routes were recorded
                routes = [f"{r.get_attr('RTA_DST')}/{r['dst_len']}" for family in
                          (socket.AF_INET, socket.AF_INET6)
                          for r in self.ipr.get_routes(family=family, table=table, oif=index)]
            for dst in routes:
                self._call(self.ipr.route, "del", table=table, oif=index, dst=dst,
                           family=socket.AF_INET6 if ":" in dst else socket.AF_INET,
                           missing_ok=True)
        if table is not None and "mark" not in state:  # ifup of a version with iif rules
            self._remove_iif_rules(tap)
        proxy = state.get("proxy_ndp")
        if proxy and self.index(proxy["dev"]) is not None:
            self._call(self.ipr.neigh, "del", dst=proxy["address"], ifindex=self.index(proxy["dev"]),
                       flags=ndmsg.NTF_PROXY, family=socket.AF_INET6, missing_ok=True)

    def _remove_iif_rules(self, tap):
        for family in (socket.AF_INET, socket.AF_INET6):
            for rule in self.ipr.get_rules(family=family):
                if rule.get_attr("FRA_IIFNAME") == tap:
                    self._call(self.ipr.rule, "del", family=family, iifname=tap,
                               table=rule.get_attr("FRA_TABLE") or rule["table"],
                               priority=rule.get_attr("FRA_PRIORITY"), missing_ok=True)

    # -- netlink with one-line errors -------------------------------------------

    def _link(self, command, **kwargs):
        self._call(self.ipr.link, command, **kwargs)

    def _call(self, method, command, missing_ok=False, **kwargs):
        try:
            return method(command, **kwargs)
        except NetlinkError as err:
            if missing_ok and err.code in (2, 3, 19):  # ENOENT, ESRCH, ENODEV
                return None
            if command == "add" and err.code == 17 and method != self.ipr.link:  # EEXIST
                return None
            what = kwargs.get("ifname") or kwargs.get("dst") or kwargs.get("iifname") or ""
            raise HostError(f"{method.__name__} {command} {what}: {os.strerror(err.code)}") \
                from None


def _sysctl(key, value, missing_ok=False):
    path = os.path.join(pathutils.PROC_SYS_NET, key)
    try:
        with open(path, "w") as stream:
            stream.write(value)
    except FileNotFoundError:
        if not missing_ok:
            raise HostError(f"{path}: no such setting") from None
