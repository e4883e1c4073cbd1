"""snf-ganeti dhcpd against real DHCP clients in VM namespaces (networking spec §4, §5)."""

import json
import os
import re
import subprocess

import pytest

from snf_ganeti.spool import SUFFIX, Spool
from tests.support.dhcp_lab import DhcpLab, GATEWAY, NAMESERVERS

pytestmark = pytest.mark.integration


@pytest.fixture
def lab(netns, tmp_path):
    made = DhcpLab(netns, tmp_path)
    yield made
    if made.daemon is not None and made.daemon.poll() is None:
        made.stop()


def assert_v4_values(vm, ip, mask, router, dns, domain, hostname, mtu):
    assert (ip, mask, router) == (vm.ip, "255.255.255.0", GATEWAY)
    assert dns.split() == NAMESERVERS
    assert (domain, hostname, mtu) == ("example.org", vm.tap.replace("tap", "vm") +
                                       ".example.org", "1400")


def test_udhcpc_gets_exactly_the_binding(lab):
    lab.start()
    vm = lab.vm(1)
    vm.udhcpc()
    (env,) = vm.reports("bound")
    assert_v4_values(vm, env["ip"], env["subnet"], env["router"], env["dns"], env["domain"],
                     env["hostname"], env["mtu"])
    assert env["serverid"] == GATEWAY and env["lease"] == "604800"


def test_dhclient_gets_exactly_the_binding_and_renews(lab):
    lab.start(lease_time=60, renewal_time=2, rebinding_time=50)  # a stall cannot make it a rebind
    vm = lab.vm(2)
    # a routed node answers ARP for the gateway, to which the client unicasts its renewal
    lab.hv.run("ip", "addr", "add", f"{GATEWAY}/32", "dev", vm.tap)
    vm.dhclient()
    (env,) = vm.reports("BOUND")
    assert_v4_values(vm, env["new_ip_address"], env["new_subnet_mask"], env["new_routers"],
                     env["new_domain_name_servers"], env["new_domain_name"],
                     env["new_host_name"], env["new_interface_mtu"])
    lab.wait_for(lambda: vm.reports("RENEW"), timeout=15, what="a dhclient RENEW")
    assert vm.reports("RENEW")[0]["new_ip_address"] == vm.ip
    lab.wait_for(lambda: lab.counter("sent_ack") >= 2, what="the renewal's ACK in the counters")


def test_dhcpcd_gets_exactly_the_binding(lab):
    lab.start()
    vm = lab.vm(3)
    vm.dhcpcd()
    (env,) = vm.reports("BOUND")
    assert_v4_values(vm, env["new_ip_address"], env["new_subnet_mask"], env["new_routers"],
                     env["new_domain_name_servers"], env["new_domain_name"],
                     env["new_host_name"], env["new_interface_mtu"])


def listen_dhcp_server_port(lab, timeout=8):
    """A UDP socket on port 67 in hv: prints the chaddr of the first request that passes
    (after a line saying it listens: returned once that line is read)."""
    listener = lab.hv.popen("python3", "-c", (
        "import socket\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f"s.bind(('0.0.0.0',67)); s.settimeout({timeout}); print('listening', flush=True)\n"
        "try: print(s.recvfrom(2048)[0][28:34].hex(), flush=True)\n"
        "except socket.timeout: pass\n"), stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline() == "listening\n"
    return listener


def test_a_mac_without_binding_gets_no_answer_and_its_packet_passes_on(lab):
    lab.start()
    vm = lab.vm(4, binding=False)
    lab.hv.run("ip", "addr", "add", "192.0.2.1/24", "dev", vm.tap)
    listener = listen_dhcp_server_port(lab)
    result = vm.udhcpc(tries=2, check=False)
    assert result.returncode != 0 and not vm.reports("bound")
    out, _ = listener.communicate(timeout=20)
    assert out.strip() == vm.mac.replace(":", "")      # the DISCOVER's chaddr reached hv
    assert lab.counter("passed") >= 1 and lab.counter("sent_offer") == 0


def test_a_foreign_mac_on_a_bound_tap_gets_no_answer(lab):
    lab.start()
    vm = lab.vm(5)
    vm.ns.run("ip", "link", "set", "eth0", "address", "aa:00:00:00:99:99")
    assert vm.udhcpc(tries=2, check=False).returncode != 0
    assert lab.counter("ignored-foreign-mac") >= 1 and lab.counter("sent_offer") == 0


def test_bridged_tap_is_answered_through_the_bridge(lab):
    lab.start()
    vm = lab.vm(6, bridged=True)
    vm.udhcpc()
    (env,) = vm.reports("bound")
    assert env["ip"] == vm.ip


def test_binding_renamed_into_place_after_the_tap_exists_is_answered(lab):
    lab.start()
    vm = lab.vm(7, binding=False)
    lab.write_binding(vm, by_rename=True)
    lab.wait_for(lambda: lab.status().get("bindings_active") == 1, what="the binding")
    vm.udhcpc()
    assert vm.reports("bound")[0]["ip"] == vm.ip


def test_binding_written_before_its_tap_exists_is_answered_when_it_appears(lab):
    lab.start()
    early = lab.bindings_dir / "tap8"
    early.write_text("INDEV=tap8\nIP=192.0.2.18\nMAC=aa:00:00:00:00:08\nHOSTNAME=vm8\n"
                     "SUBNET=192.0.2.0/24\nGATEWAY=192.0.2.1\n")
    lab.wait_for(lambda: lab.status().get("bindings_loaded") == 1, what="the binding load")
    assert lab.status()["bindings_active"] == 0
    vm = lab.vm(8, binding=False)
    lab.wait_for(lambda: lab.status().get("bindings_active") == 1, what="the tap")
    vm.udhcpc()
    assert vm.reports("bound")[0]["ip"] == "192.0.2.18"


def test_deleting_a_binding_stops_the_answers(lab):
    lab.start()
    vm = lab.vm(9)
    vm.udhcpc()
    lab.wait_for(lambda: lab.counter("sent_ack") >= 1, what="the ACK in the counters")
    acks = lab.counter("sent_ack")      # more than one if the client asked again
    (lab.bindings_dir / vm.tap).unlink()
    lab.wait_for(lambda: lab.status().get("bindings_loaded") == 0, what="the removal")
    assert vm.udhcpc(tries=2, check=False).returncode != 0
    lab.wait_for(lambda: lab.counter("passed") >= 1, what="the passed packets")
    assert lab.counter("sent_ack") == acks


def test_a_malformed_binding_is_logged_by_name_and_the_others_keep_working(lab):
    lab.start()
    (lab.bindings_dir / "tap11").write_text("MAC=not-a-mac\nHOSTNAME=x\n")
    vm = lab.vm(10)
    lab.wait_for(lambda: "tap11" in lab.logs(), what="the log line")
    assert "MAC='not-a-mac' is not a MAC address" in lab.logs()
    vm.udhcpc()
    assert vm.reports("bound")[0]["ip"] == vm.ip


def test_a_vanished_tap_deactivates_its_binding(lab):
    lab.start()
    vm = lab.vm(12)
    lab.wait_for(lambda: lab.status().get("bindings_active") == 1, what="activation")
    lab.hv.run("ip", "link", "del", vm.tap)
    lab.wait_for(lambda: lab.status().get("bindings_active") == 0, what="deactivation")
    assert lab.status()["bindings_loaded"] == 1


def test_garbage_on_the_queue_does_not_stop_the_daemon(lab):
    lab.start()
    vm = lab.vm(13)
    vm.ns.run("ip", "addr", "add", vm.ip + "/24", "dev", "eth0")
    vm.ns.run("ip", "route", "add", "default", "dev", "eth0")
    vm.ns.run("python3", "-c", (
        "import socket,os\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1)\n"
        "[s.sendto(os.urandom(n),('255.255.255.255',67)) for n in range(0,600,7)]\n"))
    lab.wait_for(lambda: lab.counter("ignored-malformed") + lab.counter("ignored-not-a-request")
                 >= 20, what="the garbage to be judged")
    vm.ns.run("ip", "addr", "flush", "dev", "eth0")
    vm.udhcpc()
    assert vm.reports("bound")[0]["ip"] == vm.ip and lab.daemon.poll() is None


def test_status_command_shows_bindings_and_counters(lab):
    from tests.support.procs import cli
    lab.start()
    vm = lab.vm(14)
    vm.udhcpc()
    lab.wait_for(lambda: lab.counter("sent_ack") >= 1, what="the status file")
    result = cli("--config", lab.config(), "status")
    text = result.stdout
    assert "bindings_loaded: 1" in text and re.search(r"\back=[1-9]", text) and \
        re.search(r"\boffer=[1-9]", text), text
    assert "lease_events_waiting: 0" in text and "lease_spool_errors: 0" in text, text
    assert "broker_blocked: None" in text, text


@pytest.mark.parametrize("backend,steering", [("nftables", "iptables-nft"),
                                              ("iptables", "iptables-legacy")])
def test_steering_rules_exist_while_running_and_go_at_exit(lab, backend, steering):
    tool = "iptables-nft-save" if steering == "iptables-nft" else "iptables-legacy-save"
    lab.start(backend=backend)
    assert lab.status()["steering"] == steering   # this kernel lacks nft_queue: see docs
    saved = lab.hv.run(tool, "-t", "mangle").stdout
    assert "-A PREROUTING -j snf-ganeti-dhcp" in saved and "--queue-num 42" in saved
    saved6 = lab.hv.run(tool.replace("iptables", "ip6tables"), "-t", "mangle").stdout
    assert "--icmpv6-type 133 -j NFQUEUE --queue-num 43" in saved6
    assert lab.stop() == 0
    assert "snf-ganeti-dhcp" not in lab.hv.run(tool, "-t", "mangle").stdout
    assert "snf-ganeti-dhcp" not in lab.hv.run("nft", "list", "ruleset").stdout
    # iptables-nft made the mangle tables (they were not there) and would leave them empty
    assert "mangle" not in lab.hv.run("nft", "list", "tables").stdout


@pytest.mark.parametrize("fail_open", [True, False])
def test_fail_open_or_closed_after_the_daemon_dies(lab, fail_open):
    lab.start(fail_open=fail_open)
    vm = lab.vm(15)
    lab.stop(sig=9)     # killed: no chance to remove its rules
    lab.hv.run("ip", "addr", "add", "192.0.2.1/24", "dev", vm.tap)
    listener = listen_dhcp_server_port(lab)
    vm.udhcpc(tries=2, check=False)
    out, _ = listener.communicate(timeout=20)
    assert out.strip() == (vm.mac.replace(":", "") if fail_open else "")


def test_lease_event_published_for_each_ack(netns, tmp_path, amqp_config, consumer):
    """The daemon's namespace cannot reach the broker: the event waits in the spool, and
    ``spool flush`` on the host delivers it."""
    from tests.support.procs import cli
    amqp = {"urls": list(amqp_config.urls), "exchange": amqp_config.exchange,
            "spool_dir": amqp_config.spool_dir}
    lab = DhcpLab(netns, tmp_path, amqp=amqp)
    lab.start()
    vm = lab.vm(16)
    vm.udhcpc()
    assert lab.stop() == 0
    flushed = cli("--config", lab.config(), "spool", "flush", "--timeout", "20")
    assert flushed.returncode == 0, flushed.stderr
    (message,) = consumer.drain(expect=1, timeout=20)
    body = json.loads(message[1])
    assert body["type"] == "snf-dhcp-lease" and body["ip"] == vm.ip and body["mac"] == vm.mac
    assert body["tap"] == vm.tap and body["instance"] == "vm16.example.org"
    assert body["node"] == "hv.example.test" and body["lease_time"] == 604800


def test_answers_do_not_wait_for_the_spool(tmp_path, freezable_dir, netns):
    """A client that asks while the disk stalls gets its address at once; its lease event
    reaches the spool when the disk writes again (found by CI: a slow fsync held up the
    answers so long that a udhcpc gave up)."""
    from tests.support.procs import cli
    spool_dir, freeze = freezable_dir
    # netns is set up after the spool, so that its teardown kills the daemon, which holds a
    # file there, before the spool is unmounted.
    lab = DhcpLab(netns, tmp_path, amqp={"spool_dir": spool_dir})
    try:
        lab.start()
        vms = [lab.vm(3), lab.vm(4)]
        lab.wait_for(lambda: lab.status().get("bindings_active") == 2, what="the bindings")
        freeze()
        for vm in vms:      # the second asks after the first's lease event is due
            vm.udhcpc()
            assert vm.reports("bound")[0]["ip"] == vm.ip
        lab.wait_for(lambda: lab.status().get("leases_waiting") == 2,
                     what="the lease events to wait for the spool")
        assert not [n for n in os.listdir(spool_dir) if n.endswith(SUFFIX)]
        shown = cli("--config", lab.config(), "status").stdout
        assert "lease_events_waiting: 2" in shown, shown
        freeze(False)
        lab.wait_for(lambda: lab.status().get("leases_waiting") == 0,
                     what="the lease events to be spooled")
        spool = Spool(spool_dir)
        bodies = [json.loads(e.body) for name in spool.entries() for e in spool.read(name)]
        assert [(b["type"], b["ip"]) for b in bodies] == [("snf-dhcp-lease", vm.ip) for vm in vms]
    finally:
        freeze(False)
    assert lab.stop() == 0
