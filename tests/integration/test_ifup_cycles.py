"""ifup/ifdown end to end in a namespace: idempotency, MAC change, cycles, bad input."""

import json
import sys

import pytest
import yaml

from snf_ganeti.spool import Spool
from tests.support.ifup_driver import write_config
from tests.support.procs import ROOT

pytestmark = pytest.mark.integration
ENV = {"INTERFACE": "tap0", "MODE": "routed", "INSTANCE": "snf-1", "MAC": "aa:00:00:11:22:33",
       "LINK": "100", "IP": "192.0.2.10", "NETWORK_SUBNET": "192.0.2.0/24",
       "NETWORK_GATEWAY": "192.0.2.1", "NETWORK_SUBNET6": "2001:db8:1::/64",
       "NETWORK_TAGS": "nfdhcpd", "INTERFACE_INDEX": "0", "TAGS": "synnefo:network:0:limited"}


@pytest.fixture(params=["nftables", "iptables"])
def node(request, netns, tmp_path):
    hv, vm = netns("hv"), netns("vm")
    netns.veth(hv, vm, "tap0", "eth0")
    return hv, write_config(tmp_path, request.param)


def drive(node, *actions, env=ENV, check=True):
    hv, config = node
    result = hv.run("env", f"PYTHONPATH={ROOT}", *[f"{k}={v}" for k, v in env.items()],
                    sys.executable, "-m", "tests.support.ifup_driver", config, *actions,
                    check=check, timeout=600)
    return [json.loads(line) for line in result.stdout.splitlines()] if check else result


def without_action(snapshot):
    return {k: v for k, v in snapshot.items() if k != "action"}


def test_ifup_twice_equals_once_and_new_mac_equals_fresh(node):
    first_down, once, twice, down = map(without_action, drive(node, "cycles:1", "up", "up", "down"))
    baseline = first_down  # the firewall's skeleton stays; nothing tied to the tap does
    assert "tap0" not in baseline["firewall"] and "lookup 100" not in baseline["rules"]
    assert once == twice
    assert "tap0" in once["firewall"] and "fwmark 0x534e0064 lookup 100" in once["rules"]
    assert once["state_files"] == ["links", "tap0.json"] and once["bindings"] == ["tap0"]
    assert down == baseline
    new_mac = "aa:00:00:99:88:77"
    reused = without_action(drive(node, "up", f"up:{new_mac}")[-1])
    fresh = without_action(drive(node, "down", f"up:{new_mac}")[-1])
    assert reused == fresh and new_mac in fresh["firewall"] and "11:22:33" not in fresh["firewall"]


# iproute2's ip, except that the first time it runs a command matching SAVE (by default:
# it plumbs the host side of a NIC; a routed NIC's link and routes go in one batch, a
# bridged one joins its bridge with "master") the firewall's listing at that moment is
# saved, and that a command matching FAIL is refused, as the kernel would refuse it. ip
# runs with no PATH of its own.
PLUMBING = '*" -batch "*|*" master "*'
PROBE = """#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
case " $* " in
    {save}) [ -e {out} ] || env PYTHONPATH={root} {python} \\
        -m tests.support.ifup_driver {config} listing > {out} ;;
    *"{fail}"*) echo "RTNETLINK answers: Operation not permitted" >&2; exit 2 ;;
esac
exec ip "$@"
"""


def probe(node, tmp_path, fail="never", save=PLUMBING):
    """An ``ip`` probe for ``node``'s ifup (see PROBE), and the file of what it saw."""
    script, seen = tmp_path / "ip-probe", tmp_path / "firewall-when-plumbed.json"
    script.write_text(PROBE.format(out=seen, root=ROOT, python=sys.executable, config=node[1],
                                   fail=fail, save=save))
    script.chmod(0o755)
    return str(script), seen


def saved(seen):
    """The one listing the probe saved."""
    (listing,) = [json.loads(line) for line in seen.read_text().splitlines()]
    return listing


@pytest.mark.parametrize("mode", ["routed", "bridged"])
def test_the_firewall_is_in_place_before_the_nic_is_plumbed(node, tmp_path, mode):
    """On a live migration the instance runs before Ganeti runs ifup on the new node: its
    first packet that the host routes or bridges must meet its filter already."""
    hv, config = node
    script, seen = probe(node, tmp_path)
    env = {**ENV, "SNF_TEST_IP": script}
    if mode == "bridged":
        hv.run("ip", "link", "add", "br0", "type", "bridge")
        env.update(MODE="bridged", LINK="br0")
    (up,) = drive(node, "up", env=env)
    when_plumbed = saved(seen)
    assert "tap0" in up["firewall"] and when_plumbed["firewall"] == up["firewall"]


def test_ifup_again_on_a_running_nic_keeps_it_filtered(node, tmp_path):
    """Run again (an operator after an upgrade), ifup first clears the NIC's host side: its
    old filter is still there then, and the new one replaces it in one step."""
    (first,) = drive(node, "up")
    script, seen = probe(node, tmp_path, save='*" route del "*')
    (again,) = drive(node, "up", env={**ENV, "SNF_TEST_IP": script})
    while_cleared = saved(seen)
    assert "tap0" in while_cleared["firewall"]
    assert while_cleared["firewall"] == first["firewall"] == again["firewall"]


def test_a_nic_refused_late_is_undone_in_full(node, tmp_path):
    """An IPv6-only routed NIC whose last step fails (reading its uplink's address, after
    the proxy entry went in): its filter, link rule, routes, proxy entry and files, all in
    place by then, are gone again."""
    hv, _ = node
    hv.run("ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1")
    for command in ("link set uplink0 up", "-6 route add default dev uplink0 table 100"):
        hv.run("ip", *command.split())
    env = {k: v for k, v in ENV.items() if k not in ("IP", "NETWORK_SUBNET", "NETWORK_GATEWAY")}
    (baseline,) = drive(node, "cycles:1", env=env)
    routes = hv.run("ip", "-6", "route", "show", "table", "100").stdout
    result = drive(node, "up", env={**env, "SNF_TEST_IP": probe(
        node, tmp_path, "show dev uplink0")[0]}, check=False)
    assert "Operation not permitted" in result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0
    (after,) = drive(node, "listing", env=env)
    assert without_action(after) == without_action(baseline)
    assert hv.run("ip", "-6", "route", "show", "table", "100").stdout == routes
    assert hv.run("ip", "-6", "neigh", "show", "proxy").stdout == ""


def test_a_nic_the_host_refuses_leaves_no_filter_behind(node):
    """The filter goes in first; when the host side then fails, it comes out again."""
    (baseline,) = drive(node, "cycles:1")  # the firewall's skeleton, as any ifup leaves it
    result = drive(node, "up", env={**ENV, "MODE": "bridged", "LINK": "nobr"}, check=False)
    assert result.returncode != 0
    assert "LINK: bridge 'nobr' does not exist" in result.stderr.strip().splitlines()[-1]
    (after,) = drive(node, "listing")
    assert without_action(after) == without_action(baseline)


def test_a_tap_name_reused_in_another_mode_equals_a_fresh_one(node):
    """The old filter is replaced, not removed first: also across modes (and families)."""
    hv, _ = node
    hv.run("ip", "link", "add", "br0", "type", "bridge")
    bridged = {**ENV, "MODE": "bridged", "LINK": "br0"}
    for first, second in ((ENV, bridged), (bridged, ENV)):
        drive(node, "up", env=first)
        (reused,) = drive(node, "up", env=second)
        (fresh,) = drive(node, "down", "up", env=second)[-1:]
        assert without_action(reused) == without_action(fresh)
        drive(node, "down")


def test_an_ifup_and_ifdown_load_no_pyroute2(node):
    """ip does their netlink part: pyroute2's import alone took 0.13 s of each."""
    assert drive(node, "up", "down", "modules")[-1]["loaded"] == []


def test_500_up_down_cycles_leave_nothing_behind(node):
    baseline, after = map(without_action, drive(node, "cycles:1", "cycles:500"))
    assert after == baseline


@pytest.mark.parametrize("change, variable", [
    ({"MAC": "not-a-mac"}, "MAC"), ({"IP": "192.0.2.999"}, "IP"), ({"MODE": "tunnel"}, "MODE"),
    ({"INTERFACE": "tap9"}, "INTERFACE"), ({"TAGS": "synnefo:network:0:nosuch"}, "TAGS")])
def test_bad_input_changes_nothing(node, change, variable):
    (baseline,) = drive(node, "listing")
    result = drive(node, "up", env={**ENV, **change}, check=False)
    assert result.returncode != 0
    assert f"{variable}: " in result.stderr.strip().splitlines()[-1]
    (after,) = drive(node, "listing")
    assert without_action(after) == without_action(baseline)


def test_nic_event_names_the_node_as_configured(node, tmp_path):
    """The CLI as Ganeti runs it, its broker unreachable: the message waits in the spool,
    naming the node as eventd.node_name says (as eventd, hooks and dhcpd do), not the FQDN."""
    hv, config = node
    with open(config) as stream:
        settings = yaml.safe_load(stream)
    settings["amqp"]["urls"] = ["amqp://guest:guest@127.0.0.1:1/"]
    settings["eventd"] = {"node_name": "gnt7.example.test"}
    with open(config, "w") as stream:
        yaml.safe_dump(settings, stream)
    hv.run("env", f"PYTHONPATH={ROOT}", *[f"{k}={v}" for k, v in ENV.items()],
           sys.executable, "-m", "snf_ganeti.cli", "--config", config, "ifup", timeout=120)
    drive(node, "down")
    spool = Spool(settings["amqp"]["spool_dir"])
    (entry,) = spool.entries()
    (envelope,) = spool.read(entry)
    body = json.loads(envelope.body)
    assert body["type"] == "snf-nic-event" and body["tap"] == "tap0"
    assert body["node"] == "gnt7.example.test"
