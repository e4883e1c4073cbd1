"""Which bindings are active: a binding answers once its tap and its INDEV both exist.

Bindings come from files (inotify) and links from netlink, in any order: a binding written
before its tap appears becomes active when the tap does, and one whose tap vanished stops.
"""

from snf_ganeti.dhcp.answer import Link


class BindingTable:
    def __init__(self):
        self.bindings = {}      # tap name -> Binding
        self.links = {}         # device name -> Link
        self._by_ifindex = {}   # tap ifindex -> (Binding, Link of INDEV)

    def lookup(self, ifindex):
        return self._by_ifindex.get(ifindex)

    def active(self):
        return list(self._by_ifindex.values())

    def set_binding(self, tap, binding):
        """Add, replace (``binding``) or remove (None) the binding of ``tap``; newly active."""
        if binding is None:
            self.bindings.pop(tap, None)
        else:
            self.bindings[tap] = binding
        return self._reindex()

    def set_link(self, link):
        stale = [name for name, old in self.links.items()
                 if old.ifindex == link.ifindex and name != link.name]   # a rename
        for name in stale:
            del self.links[name]
        self.links[link.name] = link
        return self._reindex()

    def drop_link(self, ifindex):
        for name in [n for n, link in self.links.items() if link.ifindex == ifindex]:
            del self.links[name]
        return self._reindex()

    def replace_links(self, links):
        self.links = {link.name: link for link in links}
        return self._reindex()

    def _reindex(self):
        """Rebuild the index; return the (Binding, Link) pairs that were not active before."""
        before = self._by_ifindex
        index = {}
        for tap, binding in self.bindings.items():
            tap_link, indev = self.links.get(tap), self.links.get(binding.indev)
            if tap_link is not None and indev is not None:
                index[tap_link.ifindex] = (binding, indev)
        self._by_ifindex = index
        return [pair for ifindex, pair in index.items() if before.get(ifindex) != pair]


__all__ = ["BindingTable", "Link"]
