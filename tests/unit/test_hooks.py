"""The hook's pure core: GANETI_* environments (as Ganeti 3.0.2 gives them) to plans."""

import pytest

from snf_ganeti.errors import EnvVarError
from snf_ganeti.hooks.env import parse_hook_env
from snf_ganeti.hooks.plan import plan_hook
from snf_ganeti.messages import validate

pytestmark = pytest.mark.unit
MASTER, OTHER = "gnt1.example.test", "gnt2.example.test"


def hook_env(path="instance-start", phase="post", primary=MASTER, new_primary=None, **extra):
    env = {"GANETI_HOOKS_PATH": path, "GANETI_HOOKS_PHASE": phase, "GANETI_HOOKS_VERSION": "2",
           "GANETI_CLUSTER": "gntcluster.example.test", "GANETI_MASTER": MASTER,
           "GANETI_OP_CODE": "OP_INSTANCE_STARTUP", "GANETI_INSTANCE_NAME": "snf-42",
           "GANETI_INSTANCE_PRIMARY": primary, "GANETI_INSTANCE_NIC_COUNT": "1",
           "GANETI_INSTANCE_NIC0_MAC": "aa:00:00:12:34:56", "GANETI_INSTANCE_NIC0_IP": "",
           "GANETI_INSTANCE_NIC0_MODE": "bridged", "GANETI_INSTANCE_NIC0_LINK": "gntbr0",
           "GANETI_INSTANCE_TAGS": "", "PATH": "/sbin:/bin:/usr/sbin:/usr/bin"}
    if phase == "post":
        env.update({k.replace("GANETI_INSTANCE_", "GANETI_POST_INSTANCE_"): v
                    for k, v in list(env.items()) if k.startswith("GANETI_INSTANCE_")})
        env["GANETI_POST_INSTANCE_PRIMARY"] = new_primary or primary
    env.update(extra)
    return env


def test_start_on_the_master_publishes_net_status_of_the_nics_after_the_operation():
    env = hook_env(GANETI_POST_INSTANCE_NIC0_IP="192.0.2.10",
                   GANETI_POST_INSTANCE_NIC0_NETWORK_NAME="snf-net-1",
                   GANETI_POST_INSTANCE_NIC0_NETWORK_SUBNET6="2001:db8:1::/64",
                   GANETI_POST_INSTANCE_NIC0_NAME="snf-nic-7",
                   GANETI_POST_INSTANCE_TAGS="synnefo:network:snf-nic-7:protected other")
    plan = plan_hook(parse_hook_env(env), MASTER, 1700000000.5)
    assert plan.cleanup is None
    message = plan.message
    assert message.routing_key == "ganeti.snf.event.net"
    assert message.body["nics"] == [{
        "index": 0, "name": "snf-nic-7", "uuid": None, "mac": "aa:00:00:12:34:56",
        "ip": "192.0.2.10", "ipv6": "2001:db8:1:0:a800:ff:fe12:3456", "mode": "bridged",
        "link": "gntbr0", "network": "snf-net-1", "firewall": "protected"}]
    assert message.body["hook"] == "instance-start" and message.body["node"] == MASTER
    validate(message.body)


def test_nothing_is_published_off_the_master_or_in_the_pre_phase():
    assert plan_hook(parse_hook_env(hook_env()), OTHER, 0).message is None
    assert plan_hook(parse_hook_env(hook_env(phase="pre")), MASTER, 0).message is None


@pytest.mark.parametrize("path", ["instance-stop", "instance-remove"])
def test_stop_and_remove_clean_up_on_the_primary_only(path):
    assert plan_hook(parse_hook_env(hook_env(path)), MASTER, 0).cleanup == "snf-42"
    assert plan_hook(parse_hook_env(hook_env(path, primary=OTHER)), MASTER, 0).cleanup is None
    assert plan_hook(parse_hook_env(hook_env(path)), MASTER, 0).message is None


@pytest.mark.parametrize("path", ["instance-migrate", "instance-failover"])
def test_migration_cleans_up_on_the_node_the_instance_left(path):
    moved = parse_hook_env(hook_env(path, primary=MASTER, new_primary=OTHER))
    assert plan_hook(moved, MASTER, 0).cleanup == "snf-42"
    assert plan_hook(moved, OTHER, 0).cleanup is None
    assert plan_hook(moved, MASTER, 0).message is not None       # announced by the master
    unmoved = parse_hook_env(hook_env(path, primary=MASTER, new_primary=MASTER))
    assert plan_hook(unmoved, MASTER, 0).cleanup is None


def test_rename_announces_the_new_name():
    env = hook_env("instance-rename", GANETI_INSTANCE_NEW_NAME="snf-43")
    assert plan_hook(parse_hook_env(env), MASTER, 0).message.body["instance"] == "snf-43"


@pytest.mark.parametrize("key, value, problem", [
    ("GANETI_HOOKS_PATH", "", "GANETI_HOOKS_PATH: missing"),
    ("GANETI_HOOKS_PATH", "../x", "GANETI_HOOKS_PATH: '../x' is not a hooks path"),
    ("GANETI_HOOKS_PHASE", "during", "GANETI_HOOKS_PHASE: 'during' is not one of pre, post"),
    ("GANETI_POST_INSTANCE_NIC_COUNT", "many", "GANETI_POST_INSTANCE_NIC_COUNT: 'many'"),
    ("GANETI_POST_INSTANCE_NIC0_MAC", "zz", "GANETI_POST_INSTANCE_NIC0_MAC: 'zz'"),
    ("GANETI_POST_INSTANCE_NIC0_IP", "1.2.3", "GANETI_POST_INSTANCE_NIC0_IP: '1.2.3'"),
])
def test_a_bad_variable_is_named(key, value, problem):
    with pytest.raises(EnvVarError) as caught:
        parse_hook_env(hook_env(**{key: value}))
    assert str(caught.value).startswith(problem)
