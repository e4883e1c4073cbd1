"""Binding files: what ifup tells the DHCP server about one tap (networking spec §3.2).

The format is nfdhcpd's, so bindings written by gnt-networking keep working: ``KEY=value``
lines, the file named after the tap the VM's packets arrive on.  Unlike nfdhcpd, MACs compare
case-insensitively, an empty value (``MTU=`` too) means unset, and quotes are removed.
"""

import ipaddress
import re
from dataclasses import dataclass

from snf_ganeti.errors import BindingError

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
_IFNAME = re.compile(r"^[^/\s:]{1,15}$")


@dataclass(frozen=True)
class Binding:
    """One binding file: what dhcpd may answer the VM behind one tap (MAC, hostname, addresses)."""

    tap: str                    # the file name: the interface the VM's packets arrive on
    mac: str                    # lower case
    hostname: str
    indev: str                  # replies come from this device's MAC (the tap, or its bridge)
    ip: ipaddress.IPv4Address | None
    subnet: ipaddress.IPv4Network | None
    gateway: ipaddress.IPv4Address | None
    subnet6: ipaddress.IPv6Network | None
    gateway6: ipaddress.IPv6Address | None
    mtu: int | None
    private: bool               # no router option, and RAs with router lifetime 0
    macspoof: bool              # the VM may use other MACs: no MAC check

    @property
    def routed(self):
        """True when the tap is the VM's only link (its packets do not cross a bridge)."""
        return self.indev == self.tap


def parse_binding(tap, text):
    """The Binding in ``text`` (the file named ``tap``); BindingError naming what is wrong."""
    if not _IFNAME.match(tap):
        raise BindingError(tap, "file name is not an interface name")
    values = {}
    for line in text.splitlines():
        match = _LINE.match(line.rstrip())
        if match:
            values[match[1]] = match[2].strip().strip('"').strip("'") or None

    def parsed(key, kind):
        raw = values.get(key)
        if raw is None:
            return None
        try:
            return kind(raw)
        except ValueError:
            raise BindingError(tap, f"{key}={raw!r} is not {_KINDS[kind]}") from None

    mac = (values.get("MAC") or "").lower()
    if not _MAC.match(mac):
        raise BindingError(tap, f"MAC={values.get('MAC') or ''!r} is not a MAC address")
    if not values.get("HOSTNAME"):
        raise BindingError(tap, "HOSTNAME is missing")
    ip, subnet = parsed("IP", ipaddress.IPv4Address), parsed("SUBNET", _network4)
    if ip is not None and subnet is None:
        raise BindingError(tap, "IP is set but SUBNET is not")
    if ip is not None and ip not in subnet:
        raise BindingError(tap, f"IP={ip} is not in SUBNET={subnet}")
    mtu = parsed("MTU", int)
    if mtu is not None and not 68 <= mtu <= 65535:
        raise BindingError(tap, f"MTU={mtu} is out of range (68-65535)")
    indev = values.get("INDEV") or tap
    if not _IFNAME.match(indev):
        raise BindingError(tap, f"INDEV={indev!r} is not an interface name")
    return Binding(
        tap=tap, mac=mac, hostname=values["HOSTNAME"], indev=indev, ip=ip, subnet=subnet,
        gateway=parsed("GATEWAY", ipaddress.IPv4Address),
        subnet6=parsed("SUBNET6", _network6), gateway6=parsed("GATEWAY6", ipaddress.IPv6Address),
        mtu=mtu, private=bool(values.get("PRIVATE")), macspoof=bool(values.get("MACSPOOF")))


def _network4(text):
    return ipaddress.IPv4Network(text, strict=False)


def _network6(text):
    return ipaddress.IPv6Network(text, strict=False)


_KINDS = {ipaddress.IPv4Address: "an IPv4 address", ipaddress.IPv6Address: "an IPv6 address",
          _network4: "an IPv4 network", _network6: "an IPv6 network", int: "an integer"}
