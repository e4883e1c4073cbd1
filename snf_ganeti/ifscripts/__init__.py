"""ifscripts: the KVM NIC script (bridged, routed, private networks, firewall, DHCP bindings).

``nic`` parses Ganeti's environment into a typed Nic; ``plan`` turns it into a NicPlan (plain
data); ``apply`` sets it up in one place: links, rules and routes through ``host``, the
firewall through a backend (``nft`` or ``iptables``), the DHCP binding and the state file.
"""
