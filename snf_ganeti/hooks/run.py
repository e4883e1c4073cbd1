"""Apply a HookPlan: the edge where a hook touches the host and the broker."""

import logging
import time

from snf_ganeti.ganeti.ssconf import this_node
from snf_ganeti.hooks.env import parse_hook_env
from snf_ganeti.hooks.plan import plan_hook
from snf_ganeti.publisher import publish_once

log = logging.getLogger("snf-ganeti.hook")


def run_hook(config, environ, clock=time.time):
    """Do what ``environ`` (a Ganeti hook's) asks of this node; returns the plan done."""
    env = parse_hook_env(environ)
    node = this_node(config.eventd.node_name)
    plan = plan_hook(env, node, clock())
    if plan.cleanup:
        from snf_ganeti.ifscripts import apply
        for tap in taps_of(config, plan.cleanup):
            apply.ifdown(config, {"INTERFACE": tap}, instance=plan.cleanup, node=node)
    if plan.message is not None:
        message = plan.message
        publish_once(config.amqp, message.routing_key, message.body, message.message_id,
                     timeout=config.hooks.publish_timeout)
    log.info("%s %s of %s on %s: %s", env.path, env.phase, env.instance, node,
             ", ".join(filter(None, ["net-status published" if plan.message else None,
                                     f"host state of {plan.cleanup} removed"
                                     if plan.cleanup else None])) or "nothing to do")
    return plan


def taps_of(config, instance):
    """The taps whose ifup state says they belong to ``instance``."""
    from snf_ganeti.ifscripts.apply import NicStore
    store = NicStore(config.network.state_dir, config.dhcp.bindings_dir)
    return [tap for tap in store.taps() if (store.state(tap) or {}).get("instance") == instance]
