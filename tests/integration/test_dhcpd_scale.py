"""200 VMs whose DHCP clients start at the same moment are all bound (networking spec §5)."""

import os
import statistics
import subprocess
import time

import pytest

from tests.support.dhcp_lab import DhcpLab

pytestmark = pytest.mark.integration
VMS = 200


def test_200_simultaneous_clients_are_all_bound(netns, tmp_path, measurement):
    lab = DhcpLab(netns, tmp_path)
    lab.start()
    try:
        vms = [lab.vm(i) for i in range(VMS)]
        lab.wait_for(lambda: lab.status().get("bindings_active") == VMS, timeout=30,
                     what="every binding to be active")
        started = {}
        clients = []
        for vm in vms:     # one udhcpc per VM, all started before any is waited for
            started[vm.tap] = time.time_ns()
            clients.append(vm.ns.popen(
                "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10", "-T", "3",
                "-s", vm.script(), stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(vm.out, "udhcpc.log"), "w")))
        for client in clients:
            client.wait(timeout=120)
        delays, unbound = [], []
        for vm in vms:
            bound = [name for name in os.listdir(vm.out) if name.endswith("-bound")]
            if not bound or vm.reports("bound")[0]["ip"] != vm.ip:
                unbound.append(vm.tap)
                continue
            delays.append((int(bound[0].split("-")[0]) - started[vm.tap]) / 1e6)
        assert not unbound, f"{len(unbound)} VMs not bound: {unbound[:10]}\n" + \
            "\n".join(lab.explain(vm) for vm in vms if vm.tap in unbound[:3]) + \
            f"\nstatus {lab.status()}\n{lab.logs()[-3000:]}"
        delays.sort()
        p50, p99 = statistics.median(delays), delays[int(len(delays) * 0.99) - 1]
        measurement(f"{VMS} simultaneous udhcpc: time to ACK p50 {p50:.0f} ms, "
                    f"p99 {p99:.0f} ms, max {delays[-1]:.0f} ms (client start included)")
        lab.wait_for(lambda: lab.counter("sent_ack") >= VMS, what="the ACKs in the counters")
        assert lab.counter("ignored-error") == 0
    finally:
        lab.stop()
