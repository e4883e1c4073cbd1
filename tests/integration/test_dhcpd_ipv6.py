"""IPv6 from snf-ganeti dhcpd: SLAAC from our RA, stateless DHCPv6, proxied neighbours."""

import time

import pytest

from snf_ganeti import frames
from tests.support.dhcp_lab import DhcpLab, NAMESERVERS6
from tests.support.procs import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def lab(netns, tmp_path):
    made = DhcpLab(netns, tmp_path)
    made.start()
    yield made
    made.stop()


def router_of(lab, vm):
    mac = lab.hv.run("cat", f"/sys/class/net/{vm.tap}/address").stdout.strip()
    return mac, str(frames.link_local(mac))


def wait_global_address(vm, timeout=10):
    """The VM's addresses once it has a global one and nothing is tentative any more (or
    an address failed duplicate address detection)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = vm.ns.run("ip", "-6", "addr", "show", "dev", "eth0").stdout
        if "dadfailed" in out or ("scope global" in out and "tentative" not in out):
            return out
        time.sleep(0.1)
    raise AssertionError(f"no settled global address: {out}")


def test_the_vm_kernel_configures_slaac_address_and_default_route_from_our_ra(lab):
    vm = lab.vm(1)
    addresses = wait_global_address(vm)
    assert str(frames.eui64(vm.mac, __import__("ipaddress").IPv6Network("2001:db8:1::/64"))) \
        in addresses
    _, router = router_of(lab, vm)
    route = vm.ns.run("ip", "-6", "route", "show", "default").stdout
    assert f"default via {router} dev eth0 proto ra" in route and "mtu 1400" in route


def test_rdisc6_sees_the_flags_and_lifetimes(lab):
    vm = lab.vm(2)
    wait_global_address(vm)
    out = vm.ns.run("rdisc6", "-1", "-w", "2000", "eth0").stdout
    assert "Stateful other conf.      :          Yes" in out
    assert "Router preference         :         high" in out
    assert "Router lifetime           :        14400" in out
    assert f"Recursive DNS server     : {NAMESERVERS6[0]}" in out
    assert "MTU                      :         1400" in out


def test_dhclient_stateless_dhcpv6_gets_dns_and_domain(lab):
    vm = lab.vm(3)
    wait_global_address(vm)     # dhclient -6 needs a non-tentative link-local address
    vm.dhclient("-6", "-S")
    (env,) = [r for r in vm.reports() if "new_dhcp6_name_servers" in r]
    assert env["reason"].endswith("6")     # dhclient -S reports RENEW6
    assert env["new_dhcp6_name_servers"] == NAMESERVERS6[0]
    assert env["new_dhcp6_domain_search"] == "example.org."
    first_id = env["new_dhcp6_server_id"]
    vm.dhclient("-6", "-S")
    again = [r for r in vm.reports() if "new_dhcp6_name_servers" in r]
    assert again[1]["new_dhcp6_server_id"] == first_id   # a stable DUID


def test_neighbour_solicitation_for_the_gateway_is_answered(lab):
    vm = lab.vm(4, gateway6="2001:db8:1::1")
    wait_global_address(vm)
    mac, _ = router_of(lab, vm)
    def resolved():     # each ping asks again until answered
        vm.ns.run("ping", "-6", "-c", "1", "-W", "1", "2001:db8:1::1", check=False)
        return f"lladdr {mac}" in vm.ns.run("ip", "-6", "neigh", "show", "2001:db8:1::1").stdout
    assert wait_until(resolved, seconds=20, interval=0), \
        vm.ns.run("ip", "-6", "neigh", "show", "2001:db8:1::1").stdout
    lab.wait_for(lambda: lab.counter("sent_na") >= 1, what="the NA in the counters")


def test_duplicate_address_detection_probes_are_never_answered(lab):
    vm = lab.vm(5)
    out = wait_global_address(vm)
    assert "dadfailed" not in out
    vm.ns.run("ip", "-6", "addr", "add", "2001:db8:1::55/64", "dev", "eth0")
    out = wait_global_address(vm)   # DAD takes about a second; an answer fails it
    assert "2001:db8:1::55/64" in out and "dadfailed" not in out and "tentative" not in out
    lab.wait_for(lambda: lab.counter("ignored-dad") >= 2, what="DAD probes in the counters")
