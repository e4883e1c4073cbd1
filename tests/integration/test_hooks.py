"""snf-ganeti hook as Ganeti runs it: clean env, real broker, real host state in a namespace."""

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from tests.support.procs import ROOT
from tests.unit.test_hooks import MASTER, hook_env

pytestmark = pytest.mark.integration
NIC_ENV = {"INTERFACE": "tap0", "MODE": "routed", "INSTANCE": "snf-42", "MAC": "aa:00:00:12:34:56",
           "LINK": "100", "IP": "192.0.2.10", "NETWORK_SUBNET": "192.0.2.0/24",
           "NETWORK_GATEWAY": "192.0.2.1", "NETWORK_TAGS": "nfdhcpd", "INTERFACE_INDEX": "0"}


def write_config(tmp_path, amqp, **hooks):
    path = tmp_path / "snf-ganeti.yaml"
    path.write_text(yaml.safe_dump({
        "amqp": amqp, "eventd": {"node_name": MASTER},
        "network": {"state_dir": str(tmp_path / "nics")},
        "dhcp": {"bindings_dir": str(tmp_path / "dhcp")}, "hooks": hooks}))
    return str(path)


def snf(ns, config, *argv, env):
    """Run snf-ganeti with exactly ``env`` (Ganeti gives hooks a clean environment)."""
    start = time.monotonic()
    run = ns.run if ns is not None else _run_here
    result = run("env", "-i", f"PYTHONPATH={ROOT}", f"SNF_GANETI_CONFIG={config}",
                    *[f"{k}={v}" for k, v in env.items()], sys.executable, "-m",
                    "snf_ganeti.cli", *argv, check=False, timeout=120)
    return result, time.monotonic() - start


def _run_here(*argv, check, timeout):
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


@pytest.fixture
def amqp(amqp_config):
    return {"urls": list(amqp_config.urls), "exchange": amqp_config.exchange,
            "spool_dir": amqp_config.spool_dir, "connect_timeout": 10.0}   # a slow broker


def test_start_hook_publishes_net_status(tmp_path, amqp, consumer):
    config = write_config(tmp_path, amqp)
    result, _ = snf(None, config, "hook", env=hook_env())      # where the broker is
    assert result.returncode == 0, result.stderr
    (message,) = consumer.drain(expect=1)
    body = json.loads(message[1])
    assert body["type"] == "ganeti-net-status" and body["instance"] == "snf-42"
    assert body["nics"][0]["mac"] == "aa:00:00:12:34:56"


def test_broker_down_spools_and_the_hook_succeeds_in_bounded_time(netns, tmp_path, amqp,
                                                                  broker):
    broker.stop()
    config = write_config(tmp_path, amqp, publish_timeout=1.0)
    result, seconds = snf(netns("hv"), config, "hook", env=hook_env())
    assert result.returncode == 0, result.stderr
    spooled = [name for name in os.listdir(amqp["spool_dir"]) if not name.startswith(".")]
    assert len(spooled) == 1
    assert seconds < 30     # hooks.timeout: a hung broker cannot hold the Ganeti job


def test_stop_hook_removes_the_taps_host_state_on_the_primary(netns, tmp_path, amqp):
    hv, vm = netns("hv"), netns("vm")
    netns.veth(hv, vm, "tap0", "eth0")
    config = write_config(tmp_path, amqp)
    up, _ = snf(hv, config, "ifup", env=NIC_ENV)
    assert up.returncode == 0, up.stderr
    assert (tmp_path / "nics" / "tap0.json").exists() and (tmp_path / "dhcp" / "tap0").exists()
    assert "tap0" in hv.run("nft", "list", "ruleset").stdout
    result, _ = snf(hv, config, "hook", env=hook_env("instance-stop"))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "nics" / "tap0.json").exists()
    assert not (tmp_path / "dhcp" / "tap0").exists()
    assert "tap0" not in hv.run("nft", "list", "ruleset").stdout
    assert "192.0.2.10" not in hv.run("ip", "route", "show", "table", "all").stdout


@pytest.mark.parametrize("strict, code", [(False, 0), (True, 1)])
def test_a_bad_environment_is_one_logged_line_and_fails_the_job_only_if_strict(
        netns, tmp_path, amqp, strict, code):
    config = write_config(tmp_path, amqp, strict=strict)
    result, _ = snf(netns("hv"), config, "hook",
                    env=hook_env(GANETI_POST_INSTANCE_NIC0_MAC="zz"))
    assert result.returncode == code
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "GANETI_POST_INSTANCE_NIC0_MAC: 'zz'" in errors[0]
