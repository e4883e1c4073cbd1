"""dhcp: userspace DHCPv4, DHCPv6, router advertisements and neighbour answers over NFQUEUE.

Not built yet (see the dhcp issue).
"""
