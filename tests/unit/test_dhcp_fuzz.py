"""Fuzz ``handler.handle``: 100,000 packets in total, none may raise or misaddress a frame.

Hypothesis drives 18,000 of them (three tests of 6,000: random bytes, edited valid packets,
DHCPv4 requests with random option lists), where a failure shrinks to a small example.  Its
per-example cost (0.5-1.7 ms) would make 100,000 take well over a minute, so the other 82,000
come from a seeded ``random.Random`` loop in one test (same invariants, same scenarios, ~4 s),
which also mixes random ND and DHCPv6 option lists.  Each test counts the packets it checked.

Scenarios: a bound tap whose queue MAC is the binding's, a foreign one, none at all; bridged,
MACSPOOF and IPv4-less bindings; and an unbound tap (with both MACs).  Invariants:
- unbound: verdict accept, no answer; bound: verdict drop and an answer;
- never ``ignored-error`` (the handler's "a bug" kind), never an exception;
- an ``ignored-*`` answer has no frame, any other kind exactly one;
- each frame leaves on the binding's tap from its link's MAC, with valid checksums, to the
  binding MAC, broadcast or a 33:33 multicast (with MACSPOOF: to any MAC the VM used);
  without MACSPOOF a packet from a MAC that is not the binding's gets no frame at all.
"""

import logging
import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snf_ganeti.dhcp.binding import Binding
from tests.support.dhcp_packets import (
    BRIDGE, BRIDGE_MAC, IFINDEX, LINK_MAC, OTHER_MAC, TAP, VM_IP, VM_MAC, apply_edits, binding,
    dhcp4_request, dhcp_config, handle, parse_dhcp4, parse_ip6, random_edits,
    random_options_packet, seed_packets)

pytestmark = pytest.mark.unit

HYPOTHESIS_EXAMPLES = 6_000
LOOP_PACKETS = 100_000 - 3 * HYPOTHESIS_EXAMPLES
CONFIG = dhcp_config(nameservers=["192.0.2.53", "192.0.2.54"], nameservers6=["2001:db8::53"],
                     routes=["10.0.0.0/8 gateway", "172.16.0.0/12 192.0.2.9"], mtu=1500)
FUZZ_SETTINGS = settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, derandomize=True,
                         database=None, suppress_health_check=list(HealthCheck))


@dataclass(frozen=True)
class Scenario:
    bound: Binding
    hw: str | None
    ifindex: int = IFINDEX

    @property
    def is_bound(self):
        return self.ifindex == IFINDEX


SCENARIOS = [
    Scenario(binding(), VM_MAC),
    Scenario(binding(), VM_MAC),                            # the common case, twice as often
    Scenario(binding(), OTHER_MAC),
    Scenario(binding(), None),
    Scenario(binding(INDEV=BRIDGE), VM_MAC),
    Scenario(binding(PRIVATE="yes", GATEWAY=None, GATEWAY6="2001:db8:1::1", MTU="1400"), VM_MAC),
    Scenario(binding(MACSPOOF="yes"), OTHER_MAC),
    Scenario(binding(MACSPOOF="yes"), None),
    Scenario(binding(IP=None, SUBNET=None, SUBNET6="2001:db8:1::/48"), VM_MAC),
    Scenario(binding(), VM_MAC, ifindex=IFINDEX + 1),
    Scenario(binding(), OTHER_MAC, ifindex=IFINDEX + 1),
]
SEEDS = seed_packets()


@pytest.fixture(autouse=True)
def quiet_handler(caplog):
    """``ignored-error`` fails the test anyway; keep its traceback for the one that does."""
    caplog.set_level(logging.CRITICAL, logger="snf_ganeti.dhcp.handler")


def check(payload, scenario):
    decision = handle(payload, bound=scenario.bound, hw=scenario.hw,
                      ifindex=scenario.ifindex, config=CONFIG)
    if not scenario.is_bound:
        assert (decision.verdict, decision.answer) == ("accept", None)
        return
    answer = decision.answer
    assert decision.verdict == "drop" and answer is not None
    assert answer.kind != "ignored-error", payload
    assert len(answer.frames) == (0 if answer.kind.startswith("ignored-") else 1), answer
    own = scenario.bound.macspoof or scenario.hw == scenario.bound.mac
    assert own or not answer.frames, (payload, answer)
    link_mac = LINK_MAC if scenario.bound.routed else BRIDGE_MAC
    for frame in answer.frames:
        assert frame.tap == TAP
        reply = parse_dhcp4(frame.data) if frame.data[12:14] == b"\x08\x00" \
            else parse_ip6(frame.data)
        assert reply.eth_src == link_mac
        if not scenario.bound.macspoof:     # MACSPOOF: whatever MAC the VM uses (chaddr too)
            assert reply.eth_dst in (scenario.bound.mac, "ff:ff:ff:ff:ff:ff") or \
                reply.eth_dst.startswith("33:33:"), reply.eth_dst


def checked_runs(test):
    """Run the hypothesis ``test`` (which appends to the list it is given); return the count."""
    seen = []
    test(seen)
    return len(seen)


def test_random_bytes():
    @FUZZ_SETTINGS
    @given(st.binary(max_size=400) | st.binary(max_size=40).map(lambda b: b"\x45" + b)
           | st.binary(max_size=80).map(lambda b: b"\x60" + b),
           st.sampled_from(SCENARIOS))
    def fuzz(seen, payload, scenario):
        seen.append(1)
        check(payload, scenario)

    assert checked_runs(fuzz) == HYPOTHESIS_EXAMPLES


EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 400), st.binary(min_size=1,
                                                                           max_size=8)),
                 min_size=1, max_size=4)


def test_edited_valid_packets():
    @FUZZ_SETTINGS
    @given(st.sampled_from(SEEDS), EDITS, st.sampled_from(SCENARIOS))
    def fuzz(seen, seed, edits, scenario):
        seen.append(1)
        check(apply_edits(seed, edits), scenario)

    assert checked_runs(fuzz) == HYPOTHESIS_EXAMPLES


def test_dhcp4_random_option_lists():
    @FUZZ_SETTINGS
    @given(st.sampled_from([None, 0, 1, 3, 4, 7, 8, 255]),
           st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=8),
           st.sampled_from(["0.0.0.0", VM_IP]), st.sampled_from([0, 0x8000]),
           st.sampled_from([6, 0, 16, 255]), st.sampled_from(SCENARIOS))
    def fuzz(seen, msg_type, options, ciaddr, flags, hln, scenario):
        seen.append(1)
        check(dhcp4_request(msg_type, options=options, ciaddr=ciaddr, flags=flags, hln=hln),
              scenario)

    assert checked_runs(fuzz) == HYPOTHESIS_EXAMPLES


def test_seeded_mutation_loop():
    rnd = random.Random(20240611)
    answered = 0
    for _ in range(LOOP_PACKETS):
        pick = rnd.random()
        if pick < 0.15:
            payload = rnd.randbytes(rnd.randint(0, 120))
        elif pick < 0.4:
            payload = random_options_packet(rnd)
        else:
            payload = rnd.choice(SEEDS)
        if pick >= 0.15 and rnd.random() < 0.8:
            payload = apply_edits(payload, random_edits(rnd))
        scenario = rnd.choice(SCENARIOS)
        check(payload, scenario)
        answered += 1
    assert answered == LOOP_PACKETS == 82_000


def test_the_seeds_are_answered():
    """The fuzz starts from packets that reach every answer, not from ones refused early."""
    kinds = [handle(seed, config=CONFIG).answer.kind for seed in SEEDS]
    assert kinds == ["offer", "ack", "ack", "inform", "ra", "na", "na", "dhcpv6-reply",
                     "ignored-stateful-dhcpv6"]
