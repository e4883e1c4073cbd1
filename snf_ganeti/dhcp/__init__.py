"""dhcp: userspace DHCPv4, DHCPv6, router advertisements and neighbour answers over NFQUEUE.

``binding`` parses the binding files ifup writes; ``dhcpv4`` and ``ipv6`` plan the answers;
``handler`` turns one queued packet into a verdict and frames (pure, fuzzed); ``table`` keeps
which bindings are active on which links; ``steering`` plans and applies the rules that send
packets to the queues; ``daemon`` is the side-effect edge (NFQUEUE, inotify, netlink, raw
sockets) and ``cli`` its ``snf-ganeti dhcpd`` command.
"""
