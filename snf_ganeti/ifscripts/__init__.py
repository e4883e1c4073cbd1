"""ifscripts: the KVM NIC script (bridged, routed, private networks, firewall, DHCP bindings).

Not built yet (see the ifscripts issue).
"""
