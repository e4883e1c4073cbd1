"""Instance lookup fields (NICs, disks, hvparams) from Ganeti's config.data.

The master writes config.data on every configuration change; it is parsed
again only when its mtime or size changed.
"""

import os

from snf_ganeti.eventd.plan import InstanceInfo
from snf_ganeti.ganeti import config_data, tags as tags_mod


def instance_info(instance, cluster_hvparams=None):
    """InstanceInfo in the shape Synnefo's dispatcher reads (backend.py parse_instance_*)."""
    profiles = tags_mod.firewall_profiles(instance.tags, instance.nics)
    nics = []
    for nic in instance.nics:
        entry = {"name": nic.name, "network": nic.network_name, "ip": nic.ip, "mac": nic.mac,
                 "mode": nic.mode, "link": nic.link, "uuid": nic.uuid}
        if nic.index in profiles:
            entry["firewall"] = profiles[nic.index]
        nics.append(entry)
    disks = [{"name": d.name, "size": d.size_mib, "uuid": d.uuid, "index": d.index}
             for d in instance.disks]
    hvparams = {**(cluster_hvparams or {}), **instance.hvparams}
    return InstanceInfo(nics=nics, disks=disks, hvparams={
        "boot_order": hvparams.get("boot_order"),
        "cdrom_image_path": hvparams.get("cdrom_image_path") or ""})


class ConfigDataCache:
    """config.data, re-read when it changed on disk."""

    def __init__(self, path):
        self.path = path
        self._stamp = None
        self._config = None

    def get(self):
        st = os.stat(self.path)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._config = config_data.read_config_data(self.path)
            self._stamp = stamp
        return self._config

    def lookup(self, name):
        """InstanceInfo for instance ``name``, or None if Ganeti does not know it."""
        config = self.get()
        instance = config.instances.get(name)
        if instance is None:
            return None
        return instance_info(instance, config.hvparams_for(instance.hypervisor))
