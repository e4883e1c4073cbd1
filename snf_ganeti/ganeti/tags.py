"""Instance tags with meaning to snf-ganeti: ``synnefo:network:<nic>:<profile>``.

``<nic>`` names a NIC by its name (what Cyclades writes, e.g. ``snf-nic-7``),
its index or its uuid (what gnt-networking documents); the first tag that
names a NIC decides its firewall profile.
"""

import logging

log = logging.getLogger(__name__)

FIREWALL_TAG_PREFIX = ("synnefo", "network")


def firewall_profiles(tags, nics):
    """{nic index: profile} for ``nics`` (objects with index, name, uuid)."""
    profiles = {}
    for tag in tags:
        parts = str(tag).split(":")
        if tuple(parts[:2]) != FIREWALL_TAG_PREFIX:
            continue
        if len(parts) != 4 or not parts[2] or not parts[3]:
            log.warning("ignoring malformed firewall tag %r (want synnefo:network:<nic>:<profile>)",
                        tag)
            continue
        ident, profile = parts[2], parts[3]
        for nic in nics:
            if ident in (nic.name, nic.uuid, str(nic.index)):
                profiles.setdefault(nic.index, profile)
    return profiles
