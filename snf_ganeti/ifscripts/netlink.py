"""A private network's bridge and its VLAN or VXLAN port, made through pyroute2.

Imported only when a NIC is the first of its private network on this node (pyroute2's
import costs about 0.13 s; see iproute.py). The port is created from the netlink request
``host.port_request`` builds, the bridge on top of it; a failure part-way removes what
this call created, so nothing is left half done.
"""

import logging
import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from snf_ganeti.errors import HostError

log = logging.getLogger(__name__)


def create_bridge(name, port_request):
    created = []
    with IPRoute() as ipr:
        def index(ifname):
            found = ipr.link_lookup(ifname=ifname)
            return found[0] if found else None

        def link(command, **request):
            try:
                ipr.link(command, **request)
            except NetlinkError as err:
                what = request.get("ifname") or name
                raise HostError(f"link {command} {what}: {os.strerror(err.code)}") from None

        port = port_request["ifname"]
        try:
            if index(port) is None:
                link("add", **port_request)
                created.append(port)
            link("add", ifname=name, kind="bridge", br_forward_delay=0)
            created.append(name)
            link("set", index=index(port), master=index(name), state="up")
            link("set", index=index(name), state="up")
        except HostError:
            for ifname in reversed(created):
                found = index(ifname)
                if found is not None:
                    try:
                        ipr.link("del", index=found)
                    except NetlinkError as err:  # the first failure is the one to report
                        log.error("cannot remove %s after a failed bridge: %s", ifname,
                                  os.strerror(err.code))
            raise
