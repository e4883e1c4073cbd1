"""``snf-ganeti dhcpd``: the side-effect edge around the pure handler.

One thread, one ``select`` loop over the NFQUEUE sockets, the binding directory's inotify fd and
a netlink socket for links; answers go out on one packet socket.  Every queued packet gets its
verdict in the same iteration it was read; an iteration reads at most ``_BATCH`` packets per
queue, so that under sustained load links, bindings and the status still get their turn.
Lease events go to the spool and the broker from a thread of their own (``leases``): the
loop never waits for the disk.
"""

import collections
import errno
import json
import logging
import os
import select
import socket
import sys
import time

import pyinotify

from snf_ganeti import frames, pathutils, sdnotify
from snf_ganeti.daemon_status import Housekeeping
from snf_ganeti.dhcp import dhcpv4, handler, ipv6, steering
from snf_ganeti.dhcp.answer import Link
from snf_ganeti.dhcp.binding import parse_binding
from snf_ganeti.dhcp.leases import LeaseWriter
from snf_ganeti.dhcp.table import BindingTable
from snf_ganeti.errors import BindingError, SnfGanetiError
from snf_ganeti.ganeti.ssconf import this_node
from snf_ganeti.messages import lease_event
from snf_ganeti.publisher import new_message_id
from snf_ganeti.spool import Envelope

log = logging.getLogger("snf-ganeti.dhcpd")

_DIR_MASK = (pyinotify.IN_CLOSE_WRITE | pyinotify.IN_MOVED_TO | pyinotify.IN_MOVED_FROM |
             pyinotify.IN_DELETE | pyinotify.IN_Q_OVERFLOW)
_QUEUE_LEN = 5000
_BATCH = 256
_STOP_TIMEOUT = 30      # for the lease events still waiting for the spool at exit


class Dhcpd:
    def __init__(self, config, publisher, clock=time.time):
        self.config, self.dhcp = config, config.dhcp
        self.leases, self.clock = LeaseWriter(publisher), clock
        self.publisher_in_use = False   # by a lease thread that did not stop (run_daemon)
        self.node = this_node(config.eventd.node_name)
        self.table = BindingTable()
        self.duid = ipv6.server_duid(_machine_id())
        self.stats = collections.Counter()
        self._lease_encoders = {}
        self.templates = dhcpv4.ReplyTemplates()
        self.sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.steering = steering.Steering(steering.plan(self.dhcp), self.dhcp.fail_open,
                                          config.network.firewall_backend)
        self.queues = []

    # -- bindings and links --------------------------------------------------------------

    def load_binding(self, name):
        if name.startswith(".") or name.endswith((".tmp", "~")):
            return
        path = os.path.join(self.dhcp.bindings_dir, name)
        try:
            with open(path, encoding="utf-8", errors="replace") as stream:
                binding = parse_binding(name, stream.read(65536))
        except FileNotFoundError:
            binding = None
        except (BindingError, OSError) as err:
            log.error("ignoring binding %s: %s", path, getattr(err, "problem", err))
            self.stats["bindings_rejected"] += 1
            binding = None
        self.activate(self.table.set_binding(name, binding))

    def load_all(self):
        names = pathutils.listdir(self.dhcp.bindings_dir)
        for name in set(names) | set(self.table.bindings):
            self.load_binding(name)

    def on_link_message(self, message):
        if message["event"] == "RTM_NEWLINK":
            link = _link(message)
            if link is not None:
                self.activate(self.table.set_link(link))
        elif message["event"] == "RTM_DELLINK":
            self.table.drop_link(message["index"])

    def activate(self, pairs):
        """Newly active routed IPv6 bindings get an RA at once, not at the next period."""
        for binding, link in pairs:
            log.info("binding %s active (MAC %s, IP %s)", binding.tap, binding.mac, binding.ip)
            frame = ipv6.router_advertisement(binding, link, self.dhcp)
            if frame is not None:
                self.send([frame], "ra")

    def periodic_ra(self):
        for binding, link in self.table.active():
            frame = ipv6.router_advertisement(binding, link, self.dhcp)
            if frame is not None:
                self.send([frame], "ra-periodic")

    # -- packets -------------------------------------------------------------------------

    def on_packet(self, packet):
        hw = packet.get_hw()
        queued = handler.QueuedPacket(payload=packet.get_payload(),
                                      ifindex=packet.physindev or packet.indev,
                                      hw=frames.mac_text(hw) if hw else None)
        decision = handler.handle(queued, self.table.lookup, self.dhcp, self.duid,
                                  self.templates)
        if decision.verdict == handler.ACCEPT:
            packet.accept()
            self.stats["passed"] += 1
            return
        packet.drop()
        self.stats["dropped"] += 1
        answer = decision.answer
        if answer.frames:
            self.send(answer.frames, answer.kind)
        else:
            self.stats[answer.kind] += 1
            log.debug("no answer on ifindex %s: %s", queued.ifindex, answer.kind)
        if answer.lease is not None:
            # Encoded now rather than all at the flush, which would hold up the answers.
            self.leases.put(self.lease_envelope(answer.lease))

    def lease_envelope(self, lease):
        """The lease event of ``lease`` (an Answer's), encoded through the encoder kept for
        it: an ACK's reply template hands out the same ``lease`` dict every time."""
        cached = self._lease_encoders.get(id(lease))
        if cached is None or cached[0] is not lease:
            if len(self._lease_encoders) >= dhcpv4.ReplyTemplates.MAX:
                self._lease_encoders.clear()
            cached = self._lease_encoders[id(lease)] = (
                lease, *lease_event.encoder({"node": self.node, **lease}))
        now = self.clock()
        return Envelope(new_message_id(), cached[1], cached[2](now), now)

    def send(self, frame_list, kind):
        for frame in frame_list:
            try:
                self.sender.sendto(frame.data, (frame.tap, 0))
                self.stats[f"sent_{kind}"] += 1
            except OSError as err:
                self.stats["send_errors"] += 1
                log.warning("could not send %s on %s: %s", kind, frame.tap, err.strerror)

    def open_queues(self):
        NetfilterQueue = _netfilterqueue()
        numbers = sorted({rule.queue for rule in self.steering.rules})
        for number in numbers:
            queue = NetfilterQueue()
            try:
                queue.bind(number, self.on_packet, max_len=_QUEUE_LEN)
            except OSError as err:
                raise SnfGanetiError(f"cannot bind NFQUEUE {number} (another dhcpd or nfdhcpd "
                                     f"running?): {err}") from None
            self.queues.append(queue)

    def check_bridge_netfilter(self):
        """iptables sees bridged packets only through br_netfilter: say so if it is off."""
        if not (self.steering.installed or "").startswith("iptables") or \
                not any(rule.bridged for rule in self.steering.rules):
            return
        path = os.path.join(pathutils.PROC_SYS_NET, "bridge", "bridge-nf-call-iptables")
        try:
            with open(path) as stream:
                enabled = stream.read().strip() == "1"
        except OSError:
            enabled = False
        if not enabled:
            log.warning("%s is not 1 (is br_netfilter loaded?): DHCP from bridge ports will "
                        "not reach dhcpd", path)

    # -- status --------------------------------------------------------------------------

    def status(self):
        return {"pid": os.getpid(), "updated": self.clock(), "node": self.node,
                "steering": self.steering.installed,
                "bindings_loaded": len(self.table.bindings),
                "bindings_active": len(self.table.active()),
                "leases_waiting": self.leases.waiting,
                "broker_blocked": self.leases.publisher.blocked,
                "counters": {**self.stats, "lease_spool_errors": self.leases.spool_errors,
                             "lease_events_dropped": self.leases.dropped}}

    def write_status(self):
        path = self.dhcp.status_file
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as stream:
            json.dump(self.status(), stream)
        os.replace(path + ".tmp", path)

    # -- the loop ------------------------------------------------------------------------

    def run(self, should_stop):
        from pyroute2 import IPRoute
        from pyroute2.netlink.rtnl import RTMGRP_LINK
        os.makedirs(self.dhcp.bindings_dir, exist_ok=True)
        watches = pyinotify.WatchManager()
        notifier = pyinotify.Notifier(watches, _Handler(dhcpd=self), timeout=0)
        watches.add_watch(self.dhcp.bindings_dir, _DIR_MASK)
        netlink = IPRoute()
        netlink.bind(groups=RTMGRP_LINK)
        try:
            self.table.replace_links(filter(None, map(_link, netlink.get_links())))
            self.load_all()
            self.open_queues()
            self.steering.install()
            self.check_bridge_netfilter()
            log.info("dhcpd ready: %d bindings, steering through %s, queues %s",
                     len(self.table.bindings), self.steering.installed,
                     ", ".join(str(r.queue) for r in self.steering.rules[:1]) and
                     sorted({r.queue for r in self.steering.rules}))
            sdnotify.notify("READY=1", f"STATUS={len(self.table.bindings)} bindings")
            self.leases.start()
            self._loop(should_stop, notifier, netlink)
        finally:
            sdnotify.notify("STOPPING=1")
            try:
                self.steering.remove()
            finally:
                self.publisher_in_use = not self.leases.stop(_STOP_TIMEOUT)
                for queue in self.queues:
                    queue.unbind()
                notifier.stop()
                netlink.close()
                self.sender.close()
                self.write_status()

    def _loop(self, should_stop, notifier, netlink):
        queue_fds = {queue.get_fd(): (queue, _Batch(queue.get_fd())) for queue in self.queues}
        try:
            self._iterate(should_stop, notifier, netlink, queue_fds)
        finally:
            for _, batch in queue_fds.values():
                batch.close()

    def _iterate(self, should_stop, notifier, netlink, queue_fds):
        inotify_fd = notifier._fd
        next_ra = self.clock()
        housekeeping = Housekeeping(self.write_status)
        while not should_stop():
            now = self.clock()
            timeout = max(0.0, min(next_ra - now, 1.0))
            try:
                readable, _, _ = select.select([*queue_fds, inotify_fd, netlink], [], [],
                                               timeout)
            except InterruptedError:
                continue
            if netlink in readable:
                for message in netlink.get():
                    self.on_link_message(message)
            if inotify_fd in readable:
                notifier.read_events()
                notifier.process_events()
            for fd in readable:
                if fd in queue_fds:
                    queue, batch = queue_fds[fd]
                    batch.left = _BATCH
                    queue.run_socket(batch)
            now = self.clock()
            if now >= next_ra:
                self.periodic_ra()
                next_ra = now + self.dhcp.ra_period
            housekeeping.tick(now)


class _Batch:
    """An NFQUEUE's socket for ``NetfilterQueue.run_socket`` that says "nothing more" (EAGAIN)
    after ``left`` reads: ``run(block=False)`` reads until the queue is empty, never under
    sustained load.  A duplicate of the queue's fd, closed by ``close``."""

    def __init__(self, fd):
        self.sock = socket.fromfd(fd, socket.AF_NETLINK, socket.SOCK_RAW)
        self.left = 0

    def recv(self, size):
        if self.left <= 0:
            raise BlockingIOError(errno.EAGAIN, "batch done")
        self.left -= 1
        return self.sock.recv(size, socket.MSG_DONTWAIT)

    def close(self):
        self.sock.close()


class _Handler(pyinotify.ProcessEvent):
    def my_init(self, dhcpd):  # pyinotify's constructor hook
        self.dhcpd = dhcpd

    def process_default(self, event):
        if event.mask & pyinotify.IN_Q_OVERFLOW:
            log.warning("inotify queue overflowed; re-reading every binding")
            self.dhcpd.load_all()
        elif not event.dir:
            self.dhcpd.load_binding(event.name)


def _link(message):
    name, mac = message.get_attr("IFLA_IFNAME"), message.get_attr("IFLA_ADDRESS")
    if not name or not mac or len(mac) != 17:
        return None
    return Link(name=name, ifindex=message["index"], mac=mac.lower())


def _netfilterqueue():
    """NetfilterQueue from the Python path, else the private copy the .deb ships."""
    try:
        from netfilterqueue import NetfilterQueue
    except ImportError:
        if pathutils.VENDOR_PYTHON not in sys.path:
            sys.path.append(pathutils.VENDOR_PYTHON)
        try:
            from netfilterqueue import NetfilterQueue
        except ImportError:
            raise SnfGanetiError("NetfilterQueue is not installed (pip install "
                                 "NetfilterQueue, or install the snf-ganeti package)") from None
    return NetfilterQueue


def _machine_id():
    try:
        with open(pathutils.MACHINE_ID) as stream:
            return stream.read()
    except OSError:
        return socket.getfqdn()
