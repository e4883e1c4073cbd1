"""ifup and ifdown: parse, plan, then apply in one place, undoing everything on failure.

Every ifup first removes whatever is tied to the tap's name (tap names are
reused), so running it twice equals running it once. ifdown needs only
INTERFACE: what to undo comes from the state file ifup wrote.
"""

import contextlib
import fcntl
import json
import logging
import os
import time

from snf_ganeti import pathutils
from snf_ganeti.errors import SnfGanetiError
from snf_ganeti.ganeti.ssconf import this_node
from snf_ganeti.ifscripts import nic as nic_mod
from snf_ganeti.ifscripts.firewall import parse_profiles
from snf_ganeti.ifscripts.host import Host
from snf_ganeti.ifscripts.plan import plan_nic

log = logging.getLogger("snf-ganeti.ifscripts")
PUBLISH_TIMEOUT = 1.0  # Ganeti waits for the NIC script; the spool keeps what is late


class NicStore:
    """Per-tap state files and DHCP binding files, each replaced atomically."""

    def __init__(self, state_dir, bindings_dir):
        self.state_dir, self.bindings_dir = state_dir, bindings_dir

    def taps(self):
        """The taps that have a state file, by name."""
        return sorted(n[:-5] for n in pathutils.listdir(self.state_dir)
                      if n.endswith(".json") and not n.startswith("."))

    def state(self, tap):
        try:
            with open(os.path.join(self.state_dir, f"{tap}.json")) as stream:
                return json.load(stream)
        except (FileNotFoundError, ValueError):
            return None

    def save_state(self, tap, state):
        _write_atomically(self.state_dir, f"{tap}.json", json.dumps(state, sort_keys=True))

    def write_binding(self, tap, content):
        _write_atomically(self.bindings_dir, tap, content, mode=0o644)

    @contextlib.contextmanager
    def locked(self):
        """One ifup or ifdown at a time on the node: links' users are counted here."""
        os.makedirs(self.state_dir, exist_ok=True)
        with open(os.path.join(self.state_dir, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # A routed link's users: links/<mark>-<table>/<tap>, one empty file per tap, so the
    # link's policy rule goes with its last tap even if the state file is gone or
    # network.routed_mark changed meanwhile.

    def join_link(self, mark, table, tap):
        _write_atomically(os.path.join(self._links, f"{mark:#x}-{table}"), tap, "")

    def links_of(self, tap):
        """[(mark, table, whether tap is its only user)] of the links ``tap`` uses."""
        found = []
        for name in pathutils.listdir(self._links):
            users = pathutils.listdir(os.path.join(self._links, name))
            if tap in users:
                mark, table = name.split("-")
                found.append((int(mark, 16), int(table), users == [tap]))
        return found

    def leave_link(self, mark, table, tap):
        directory = os.path.join(self._links, f"{mark:#x}-{table}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, tap))
        for path in (directory, self._links):
            with contextlib.suppress(OSError):  # not empty: others still use it
                os.rmdir(path)

    @property
    def _links(self):
        return os.path.join(self.state_dir, "links")

    def forget(self, tap):
        for path in (os.path.join(self.bindings_dir, tap), os.path.join(self.state_dir, f"{tap}.json")):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _write_atomically(directory, name, content, mode=0o600):
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{name}.tmp")
    with open(tmp, "w") as stream:
        stream.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, os.path.join(directory, name))


def firewall_backend(config):
    if config.network.firewall_backend == "iptables":
        from snf_ganeti.ifscripts.iptables import IptablesBackend
        return IptablesBackend()
    from snf_ganeti.ifscripts.nft import NftBackend
    return NftBackend()


def ifup(config, environ, publish=True):
    """Set up the NIC ``environ`` describes; returns the state recorded for it."""
    nic = nic_mod.parse_env(environ)
    if nic.is_communication_tap:
        log.info("%s belongs to Ganeti's instance communication; left alone", nic.tap)
        return None
    profiles = parse_profiles(config.network.profiles)
    plan = plan_nic(nic, config.network, profiles)
    store = NicStore(config.network.state_dir, config.dhcp.bindings_dir)
    backend = firewall_backend(config)
    host = Host(config.network)
    with store.locked():
        host.require_tap(plan.tap)
        # The tap's old filter stays until the new one replaces it (one step in either
        # backend): an ifup run again on a running NIC never leaves it unfiltered.
        _down(host, backend, store, plan.tap, filter_too=False)
        # What a failure part-way must undo, before the state file exists.
        state = {"tap": plan.tap, "mode": plan.mode}
        if plan.routed:
            state.update(table=plan.routed.table, mark=plan.routed.mark)
            store.join_link(plan.routed.mark, plan.routed.table, plan.tap)
        try:
            # The filter first: on a live migration the instance already runs, and its
            # packets would otherwise pass unfiltered until the firewall caught up.
            backend.setup(profiles)
            backend.apply(plan.tap, plan.filter)
            host.setup(plan, state)
            if plan.binding is not None:
                store.write_binding(plan.tap, plan.binding)
            state.update(instance=nic.instance, mac=nic.mac, profile=plan.filter.profile,
                         ipv4=str(nic.ip) if nic.ip else None,
                         ipv6=str(plan.ipv6) if plan.ipv6 else None, link=nic.link,
                         index=nic.index, network=nic.network.name if nic.network else None,
                         binding=plan.binding is not None)
            store.save_state(plan.tap, state)
        except BaseException:
            try:
                _down(host, backend, store, plan.tap, state)  # nothing half done
            except SnfGanetiError as err:  # the first failure is the one to report
                log.error("%s: undoing the failed ifup failed too: %s", plan.tap, err)
            raise
    log.info("%s up: %s %s %s, profile %s", plan.tap, nic.instance, nic.mode, nic.link,
             plan.filter.profile)
    if publish:
        _publish(config, "up", state)
    return state


def ifdown(config, environ, publish=True, instance=None, node=None):
    """Remove everything tied to the tap named by INTERFACE; fine if the tap is gone. With
    ``instance``, only if the tap is still that instance's (a hook read it before the lock:
    meanwhile the tap name may have been reused by another instance's ifup). ``node``: this
    node's name, where the caller has it already (a hook cleaning up many taps)."""
    tap = nic_mod.parse_tap(environ)
    store = NicStore(config.network.state_dir, config.dhcp.bindings_dir)
    host = Host(config.network)
    with store.locked():
        state = store.state(tap)
        if instance is not None and (state or {}).get("instance") != instance:
            log.info("%s is no longer %s's; left alone", tap, instance)
            return None
        _down(host, firewall_backend(config), store, tap, state)
    log.info("%s down", tap)
    if publish and state:
        _publish(config, "down", state, node)
    return state


def _down(host, backend, store, tap, state=None, filter_too=True):
    """Undo what ``tap`` has (its filter only with ``filter_too``); every step is tried, and
    the state is kept (for another ifdown) unless all of them worked."""
    state = state if state is not None else store.state(tap)
    failures = []
    steps = [lambda: backend.apply(tap, None)] if filter_too else []
    steps += [lambda: host.cleanup(tap, state), lambda: _leave_links(host, store, tap)]
    for step in steps:
        try:
            step()
        except SnfGanetiError as err:
            failures.append(err)
    if failures:
        raise failures[0]
    store.forget(tap)


def _leave_links(host, store, tap):
    for mark, table, last in store.links_of(tap):
        if last:  # the rule goes first: an interrupted ifdown still finds the marker
            host.remove_link_rule(table, mark)
        store.leave_link(mark, table, tap)


def _publish(config, action, state, node=None):
    fields = {"action": action, "node": node or this_node(config.eventd.node_name),
              "instance": state["instance"], "tap": state["tap"], "index": state.get("index"),
              "mac": state["mac"], "ip": state.get("ipv4"), "ipv6": state.get("ipv6"),
              "mode": state["mode"], "link": state.get("link"), "network": state.get("network"),
              "firewall": state.get("profile")}
    # Loaded only now (pika is about 20 ms): the NIC is plumbed without waiting for it.
    try:
        from snf_ganeti.messages import nic_event
        from snf_ganeti.publisher import publish_once
    except ImportError as err:  # a broken installation: as loud as a full spool
        raise SnfGanetiError(f"{state['tap']}: cannot publish its snf-nic-event: {err}") \
            from None
    message = nic_event.build(fields, time.time())
    publish_once(config.amqp, message.routing_key, message.body, message.message_id,
                 timeout=PUBLISH_TIMEOUT)
