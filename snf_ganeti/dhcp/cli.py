"""``snf-ganeti dhcpd``: run the DHCP server; its part of ``snf-ganeti status``."""

from snf_ganeti import cli, daemon_status

PART = "dhcpd"


def register(sub, common):
    p = sub.add_parser(
        "dhcpd", parents=[common], help="answer VMs' DHCP, DHCPv6, RS and NS (daemon)",
        description="Answer DHCPv4, stateless DHCPv6, router and neighbour solicitations of "
                    "VMs from the binding files ifup writes (dhcp.bindings_dir), over NFQUEUE. "
                    "Installs the rules that steer those packets to its queues at start and "
                    "removes them at exit. Runs in the foreground; under systemd (Type=notify) "
                    "it reports readiness and pings the watchdog. Publishes a lease event per "
                    "DHCPACK.")
    p.set_defaults(handler=run)


def run(args):
    from snf_ganeti.dhcp.daemon import Dhcpd
    return daemon_status.run_daemon(args, Dhcpd, "dhcpd")


def status(config):
    stats, running = daemon_status.read(config.dhcp.status_file, "dhcpd")
    if "pid" not in stats:
        return {"running": False, **stats}
    counters = stats.get("counters", {})
    sent = {k[5:]: v for k, v in sorted(counters.items()) if k.startswith("sent_")}
    return {"running": running, "steering": stats.get("steering"),
            "bindings_loaded": stats.get("bindings_loaded"),
            "bindings_active": stats.get("bindings_active"),
            "answers_sent": " ".join(f"{k}={v}" for k, v in sent.items()) or None,
            "packets_passed": counters.get("passed", 0),
            "packets_dropped": counters.get("dropped", 0),
            "lease_events_waiting": stats.get("leases_waiting", 0),
            "broker_blocked": stats.get("broker_blocked"),
            "lease_spool_errors": counters.get("lease_spool_errors", 0),
            "lease_events_dropped": counters.get("lease_events_dropped", 0)}
