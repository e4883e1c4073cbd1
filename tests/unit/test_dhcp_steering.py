"""Steering rules: the plan, its nftables and iptables text, and installing them (faked run)."""

import re
import subprocess

import pytest

from snf_ganeti.dhcp import steering
from snf_ganeti.dhcp.steering import CHAIN, SteeringRule, Steering, plan, render_iptables, \
    render_nft
from snf_ganeti.errors import SteeringError, one_line
from tests.support.dhcp_packets import dhcp_config

pytestmark = pytest.mark.unit

DEFAULT = plan(dhcp_config())


def test_default_plan():
    assert DEFAULT == (
        SteeringRule("dhcp", "tap+", 42, bridged=False),
        SteeringRule("dhcp", "tap+", 42, bridged=True),
        SteeringRule("rs", "tap+", 43, bridged=False),
        SteeringRule("ns", "tap+", 44, bridged=False),
        SteeringRule("dhcpv6", "tap+", 45, bridged=False),
        SteeringRule("dhcpv6", "tap+", 45, bridged=True))
    assert [rule.family for rule in DEFAULT] == ["ipv4"] * 2 + ["ipv6"] * 4


@pytest.mark.parametrize("key, left", [
    ("dhcp_queue", {"rs", "ns", "dhcpv6"}), ("rs_queue", {"dhcp", "ns", "dhcpv6"}),
    ("ns_queue", {"dhcp", "rs", "dhcpv6"}), ("dhcpv6_queue", {"dhcp", "rs", "ns"})])
def test_a_queue_of_none_disables_its_kind(key, left):
    assert {rule.what for rule in plan(dhcp_config(**{key: None}))} == left


def test_every_interface_pattern_gets_the_rules():
    rules = plan(dhcp_config(interfaces=["tap+", "vif1"], rs_queue=None, ns_queue=None,
                             dhcpv6_queue=None, dhcp_queue=67))
    assert rules == tuple(SteeringRule("dhcp", interface, 67, bridged)
                          for interface in ("tap+", "vif1") for bridged in (False, True))


def test_no_queues_no_rules():
    assert plan(dhcp_config(dhcp_queue=None, rs_queue=None, ns_queue=None,
                            dhcpv6_queue=None)) == ()


NFT = """\
table inet snf_ganeti_dhcp
delete table inet snf_ganeti_dhcp
table inet snf_ganeti_dhcp {
\tchain prerouting {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tiifname "tap*" udp dport 67 queue num 42
\t\tiifname "tap*" icmpv6 type nd-router-solicit queue num 43
\t\tiifname "tap*" icmpv6 type nd-neighbor-solicit queue num 44
\t\tiifname "tap*" udp dport 547 queue num 45
\t}
}
table bridge snf_ganeti_dhcp
delete table bridge snf_ganeti_dhcp
table bridge snf_ganeti_dhcp {
\tchain prerouting {
\t\ttype filter hook prerouting priority -200; policy accept;
\t\tiifname "tap*" udp dport 67 queue num 42
\t\tiifname "tap*" udp dport 547 queue num 45
\t}
}
"""

IPTABLES = {
    "ipv4": "*mangle\n:snf-ganeti-dhcp - [0:0]\n"
            "-A snf-ganeti-dhcp -i tap+ -p udp --dport 67 -j NFQUEUE --queue-num 42\n"
            "-A snf-ganeti-dhcp -m physdev --physdev-in tap+ -p udp --dport 67 "
            "-j NFQUEUE --queue-num 42\n"
            "COMMIT\n",
    "ipv6": "*mangle\n:snf-ganeti-dhcp - [0:0]\n"
            "-A snf-ganeti-dhcp -i tap+ -p ipv6-icmp --icmpv6-type 133 -j NFQUEUE --queue-num 43\n"
            "-A snf-ganeti-dhcp -i tap+ -p ipv6-icmp --icmpv6-type 135 -j NFQUEUE --queue-num 44\n"
            "-A snf-ganeti-dhcp -i tap+ -p udp --dport 547 -j NFQUEUE --queue-num 45\n"
            "-A snf-ganeti-dhcp -m physdev --physdev-in tap+ -p udp --dport 547 "
            "-j NFQUEUE --queue-num 45\n"
            "COMMIT\n"}


def test_render_nft_default():
    assert render_nft(DEFAULT, bypass=False) == NFT


def test_render_nft_fail_open_bypasses_every_rule():
    text = render_nft(DEFAULT, bypass=True)
    assert text == re.sub(r"(queue num \d+)$", r"\1 bypass", NFT, flags=re.M)
    assert text.count(" bypass\n") == 6


def test_render_nft_without_bridged_rules_only_deletes_the_bridge_table():
    text = render_nft(plan(dhcp_config(dhcp_queue=None, dhcpv6_queue=None)), bypass=False)
    assert text.endswith("\t}\n}\ntable bridge snf_ganeti_dhcp\n"
                         "delete table bridge snf_ganeti_dhcp\n")
    assert text.count("table bridge") == 2


def test_render_iptables_default():
    assert render_iptables(DEFAULT, bypass=False) == IPTABLES


def test_render_iptables_fail_open():
    texts = render_iptables(DEFAULT, bypass=True)
    assert texts == {family: re.sub(r"(--queue-num \d+)$", r"\1 --queue-bypass", text,
                                    flags=re.M) for family, text in IPTABLES.items()}
    assert sum(text.count("--queue-bypass") for text in texts.values()) == 6


def test_render_iptables_leaves_out_a_family_without_rules():
    assert set(render_iptables(plan(dhcp_config(rs_queue=None, ns_queue=None,
                                                dhcpv6_queue=None)), False)) == {"ipv4"}


class FakeRun:
    """Records each argv (and its stdin); ``results`` maps an argv prefix to (rc, stderr)."""

    def __init__(self, results=None, raises=None):
        self.calls, self.results, self.raises = [], dict(results or {}), dict(raises or {})

    def __call__(self, argv, input=None, capture_output=False, text=False, timeout=None):
        assert (capture_output, text, timeout) == (True, True, 30)
        self.calls.append((tuple(argv), input))
        for prefix, error in self.raises.items():
            if tuple(argv[:len(prefix)]) == prefix:
                raise error
        for prefix, (returncode, stderr, *stdout) in self.results.items():
            if tuple(argv[:len(prefix)]) == prefix:
                return subprocess.CompletedProcess(argv, returncode, "".join(stdout), stderr)
        return subprocess.CompletedProcess(argv, 0, "", "")

    @property
    def argvs(self):
        return [argv for argv, _ in self.calls]


def jump(tool, op):
    return (tool, "-t", "mangle", op, "PREROUTING", "-j", CHAIN)


def iptables_install(variant, check_rc=1):
    """The calls installing the default rules with iptables-``variant``."""
    calls = [(("nft", "list", "table", f, "mangle"), None) for f in ("ip", "ip6")
             if variant == "nft"]
    for family, tool in (("ipv4", f"iptables-{variant}"), ("ipv6", f"ip6tables-{variant}")):
        calls += [((f"{tool}-restore", "--noflush"), IPTABLES[family]),
                  (jump(tool, "-C"), None)]
        if check_rc:
            calls.append((jump(tool, "-I"), None))
    return calls


def test_nftables_install_and_remove():
    run = FakeRun()
    steer = Steering(DEFAULT, False, "nftables", run=run)
    assert steer.install() == "nftables"
    assert steer.installed == "nftables"
    assert run.calls == [(("nft", "-f", "-"), NFT)]
    run.calls.clear()
    steer.remove()
    assert run.calls == [(("nft", "-f", "-"),
                          "table inet snf_ganeti_dhcp\ndelete table inet snf_ganeti_dhcp\n"
                          "table bridge snf_ganeti_dhcp\ndelete table bridge snf_ganeti_dhcp\n")]
    assert steer.installed is None


NFT_FAILURES = {
    "nft-fails": {"results": {("nft",): (1, "Error: Could not process rule: No such file or "
                                            "directory\nqueue num 42\n")}},
    "no-nft": {"raises": {("nft",): FileNotFoundError(2, "No such file or directory")}},
    "nft-hangs": {"raises": {("nft",): subprocess.TimeoutExpired("nft", 30)}},
}


@pytest.mark.parametrize("failure", NFT_FAILURES.values(), ids=NFT_FAILURES.keys())
def test_nftables_failure_falls_back_to_iptables_nft(failure, caplog):
    run = FakeRun(**failure)
    run.results[("iptables-nft", "-t", "mangle", "-C")] = (1, "iptables: No chain/target\n")
    run.results[("ip6tables-nft", "-t", "mangle", "-C")] = (1, "")
    steer = Steering(DEFAULT, False, "nftables", run=run)
    assert steer.install() == "iptables-nft"
    assert steer.installed == "iptables-nft"
    assert run.calls == [(("nft", "-f", "-"), NFT), *iptables_install("nft")]
    assert "steering through iptables-nft instead" in caplog.text


@pytest.mark.parametrize("others", [False, True], ids=["alone", "others-rules"])
def test_iptables_nft_deletes_the_mangle_tables_it_made_when_left_empty(others):
    """iptables-nft creates ``ip mangle`` on first use and never deletes it."""
    policies = "-P PREROUTING ACCEPT\n-P INPUT ACCEPT\n"
    run = FakeRun(results={("nft", "list", "table", "ip", "mangle"): (1, "No such file"),
                           ("nft", "-f"): (1, "Error: queue"),
                           ("iptables-nft", "-t", "mangle", "-S"): (
                               0, "", policies + ("-A PREROUTING -j MARK\n" if others else ""))})
    steer = Steering(DEFAULT, False, "nftables", run=run)
    assert steer.install() == "iptables-nft"
    run.calls.clear()
    steer.remove()
    deleted = [argv for argv in run.argvs if argv[:2] == ("nft", "delete")]
    # ip6 mangle existed before (nft listed it): it stays, as does a table others use
    assert deleted == ([] if others else [("nft", "delete", "table", "ip", "mangle")])


def test_existing_jump_is_not_inserted_twice():
    run = FakeRun()
    steer = Steering(DEFAULT, False, "iptables", run=run)
    assert steer.install() == "iptables-legacy"
    assert run.calls == iptables_install("legacy", check_rc=0)


def test_iptables_backend_uses_iptables_legacy_and_remove_undoes_it():
    run = FakeRun(results={("iptables-legacy", "-t", "mangle", "-C"): (1, ""),
                           ("ip6tables-legacy", "-t", "mangle", "-C"): (1, "")})
    steer = Steering(DEFAULT, True, "iptables", run=run)
    assert steer.install() == "iptables-legacy"
    assert run.calls[0] == (("iptables-legacy-restore", "--noflush"),
                            render_iptables(DEFAULT, True)["ipv4"])
    assert [argv for argv in run.argvs if "-I" in argv] == \
        [jump("iptables-legacy", "-I"), jump("ip6tables-legacy", "-I")]
    run.calls.clear()
    steer.remove()
    assert run.argvs == [
        jump("iptables-legacy", "-D"), ("iptables-legacy", "-t", "mangle", "-F", CHAIN),
        ("iptables-legacy", "-t", "mangle", "-X", CHAIN),
        jump("ip6tables-legacy", "-D"), ("ip6tables-legacy", "-t", "mangle", "-F", CHAIN),
        ("ip6tables-legacy", "-t", "mangle", "-X", CHAIN)]
    assert steer.installed is None


def test_remove_tolerates_failures_and_nothing_installed_removes_nothing():
    run = FakeRun(results={("iptables-nft",): (1, "iptables: Bad rule\n"),
                           ("ip6tables-nft",): (1, "")})
    steer = Steering(DEFAULT, False, "nftables", run=run)
    steer.installed = "iptables-nft"
    steer.remove()
    assert len(run.calls) == 6 and steer.installed is None
    steer.remove()
    assert len(run.calls) == 6


def test_failing_restore_raises_a_one_line_error():
    run = FakeRun(results={("iptables-legacy-restore",): (
        2, "iptables-restore v1.8.9 (legacy): \nError occurred at line: 3\n"
           "Try `iptables-restore -h' for more information.\n")})
    steer = Steering(DEFAULT, False, "iptables", run=run)
    with pytest.raises(SteeringError) as caught:
        steer.install()
    assert str(caught.value) == \
        "iptables-legacy-restore --noflush failed: Error occurred at line: 3"
    assert run.argvs == [("iptables-legacy-restore", "--noflush")]


def test_failing_jump_insert_raises():
    run = FakeRun(results={("iptables-legacy", "-t", "mangle", "-C"): (1, ""),
                           ("iptables-legacy", "-t", "mangle", "-I"): (4, "")})
    with pytest.raises(SteeringError) as caught:
        Steering(DEFAULT, False, "iptables", run=run).install()
    assert str(caught.value) == "iptables-legacy -t failed: 4"


def test_both_backends_failing_raises():
    run = FakeRun(raises={("nft",): FileNotFoundError(2, "No such file or directory"),
                          ("iptables-nft-restore",): FileNotFoundError(2, "gone")})
    with pytest.raises(SteeringError) as caught:
        Steering(DEFAULT, False, "nftables", run=run).install()
    assert str(caught.value) == "iptables-nft-restore: [Errno 2] gone"


def test_no_rules_installs_nothing():
    run = FakeRun()
    steer = Steering((), False, "nftables", run=run)
    assert steer.install() is None
    steer.remove()
    assert run.calls == []


def test_one_line_prefers_error_messages_and_caps_its_length():
    assert one_line("warning\n  Error: x\nerror: y\n") == "x"
    assert one_line("warning\nerror: y\nerror: y\n") == "error: y"
    assert one_line("\n\n  just this  \nand that\nTry `ipset help'") == "just this; and that"
    assert one_line("E" * 300 + " error") == ("E" * 300)[:200]
    assert one_line("") == "failed without saying why" and one_line("", default="") == ""