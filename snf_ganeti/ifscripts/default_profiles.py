"""The firewall profiles every node has unless ``network.profiles`` says otherwise.

Plain data, apart from ``firewall``: the configuration's defaults come from here, and
loading the configuration (every command) must not build the firewall's classes.
"""

# ICMPv6 that IPv6 cannot work without (RFC 4890): errors and neighbour discovery.
ICMPV6_ESSENTIAL = ["destination-unreachable", "packet-too-big", "time-exceeded",
                    "parameter-problem", "echo-request", "echo-reply", "nd-router-advert",
                    "nd-neighbor-solicit", "nd-neighbor-advert", "nd-redirect"]

DEFAULT_PROFILES = {
    "protected": {
        "description": "replies to the VM's own connections, DNS answers, ICMP and ICMPv6 "
                       "(echo, errors, neighbour discovery); no new inbound connections",
        "default": "drop",
        "rules": [{"proto": "tcp", "not_syn": True}, {"proto": "udp", "sport": [53]},
                  {"proto": "icmp"}, {"proto": "icmpv6", "icmp_types": ICMPV6_ESSENTIAL}]},
    "limited": {
        "description": "protected, plus new inbound SSH (22) and RDP (3389)",
        "default": "drop",
        "rules": [{"proto": "tcp", "not_syn": True}, {"proto": "tcp", "dport": [22, 3389]},
                  {"proto": "udp", "sport": [53]}, {"proto": "icmp"},
                  {"proto": "icmpv6", "icmp_types": ICMPV6_ESSENTIAL}]},
    "unprotected": {"description": "everything passes", "default": "accept", "rules": []},
}
