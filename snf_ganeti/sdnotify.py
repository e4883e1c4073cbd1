"""systemd's readiness and watchdog protocol (sd_notify), for Type=notify units.

The protocol is one datagram to ``$NOTIFY_SOCKET``; outside systemd the
variable is unset and every call does nothing, so the daemons run as plain
foreground processes too.
"""

import os
import socket


def notify(*assignments, environ=os.environ):
    """Send ``READY=1``-style lines; True if a supervisor listened."""
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto("\n".join(assignments).encode(), address)
        except OSError:
            return False
    return True


def watchdog_interval(environ=os.environ):
    """Seconds between WATCHDOG=1 pings (half systemd's WatchdogSec), or None."""
    usec = environ.get("WATCHDOG_USEC")
    pid = environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None
