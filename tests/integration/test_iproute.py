"""The NIC scripts' ``ip`` edge (snf_ganeti/ifscripts/iproute.py), run in a namespace of the
test's own: ``pathutils.IP`` is pointed at a script that runs ``ip -n NS``."""

import pytest

from snf_ganeti import pathutils
from snf_ganeti.errors import HostError
from snf_ganeti.ifscripts import iproute

pytestmark = pytest.mark.integration


@pytest.fixture
def ns(netns, tmp_path, monkeypatch):
    ns = netns("iproute")
    wrapper = tmp_path / "ip"
    wrapper.write_text(f'#!/bin/sh\nexec ip -n {ns.name} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(pathutils, "IP", str(wrapper))
    return ns


def test_a_batch_stops_at_the_command_that_fails_and_names_it(ns):
    ns.run("ip", "link", "set", "lo", "down")
    with pytest.raises(HostError) as raised:
        iproute.batch([["link", "set", "dev", "lo", "up"],
                       ["route", "replace", "10.9.0.1/32", "dev", "snft-none0", "table", "7"],
                       ["link", "set", "dev", "lo", "down"]])
    message = str(raised.value)
    assert message.startswith("ip route replace 10.9.0.1/32 dev snft-none0 table 7: ")
    assert 'Cannot find device "snft-none0"' in message and "\n" not in message
    assert "UP" in ns.run("ip", "-o", "link", "show", "lo").stdout.split("<")[1]  # not reached


def test_expected_answers_pass_and_any_other_is_one_line(ns):
    rule = ["-4", "rule", "add", "priority", "32000", "fwmark", "0x7", "table", "7"]
    for _ in range(2):
        iproute.run(*rule, ok=iproute.EXISTS)
    assert ns.run("ip", "-4", "rule").stdout.count("fwmark 0x7 lookup 7") == 1
    for _ in range(2):
        iproute.run("-4", "rule", "del", *rule[3:], ok=iproute.MISSING)
    assert "fwmark 0x7" not in ns.run("ip", "-4", "rule").stdout
    with pytest.raises(HostError) as raised:
        iproute.run(*rule[:-1], "no-such-table")
    assert str(raised.value).startswith("ip -4 rule add priority 32000")
    assert "\n" not in str(raised.value)
    with pytest.raises(HostError):  # EXISTS does not hide a missing device
        iproute.run("link", "set", "dev", "snft-none0", "up", ok=iproute.EXISTS)


def test_show_reads_json_and_nothing_for_what_does_not_exist(ns):
    (lo,) = iproute.show("link", "show", "dev", "lo")
    assert lo["ifname"] == "lo" and lo["mtu"] == 65536
    assert iproute.show("link", "show", "dev", "snft-none0") == []
    for family in ("-4", "-6"):  # IPv4 says the table does not exist, IPv6 lists nothing
        assert iproute.show(family, "route", "show", "table", "4242", "default") == []


def test_a_batch_of_names_ip_would_parse_runs_them_one_by_one(ns):
    """ip's batch parser takes "#" for a comment and quotes for itself; a device name may
    hold them (Ganeti's never do), and then each command goes to its own ip, untouched."""
    ns.run("ip", "tuntap", "add", "dev", "ta#p0", "mode", "tap")
    iproute.batch([["link", "set", "dev", "ta#p0", "up"],
                   ["route", "replace", "10.9.0.2/32", "dev", "ta#p0", "table", "7"]])
    assert "10.9.0.2 dev ta#p0" in ns.run("ip", "route", "show", "table", "7").stdout


def test_without_ip_the_error_says_which_package(monkeypatch, tmp_path):
    monkeypatch.setattr(pathutils, "IP", str(tmp_path / "ip"))
    with pytest.raises(HostError, match=r"is not installed \(Debian package iproute2\)"):
        iproute.run("link", "show")
