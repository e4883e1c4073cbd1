"""The environment Ganeti gives its hooks (ganeti-observed spec §7), as a typed HookEnv.

Post hooks get the state before the operation in ``GANETI_INSTANCE_*`` and after it in
``GANETI_POST_INSTANCE_*``: the NICs are read from the after-state when there is one (a
modify changes them), the primary node from both (a migration moves it).
"""

import re
from dataclasses import dataclass

from snf_ganeti.errors import EnvVarError
from snf_ganeti.ifscripts.nic import EnvReader, Network, ipv4_address, mac_address, parse_network

_HOOKS_PATH = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class HookNic:
    """One of the instance's NICs, from the hook's ``GANETI_[POST_]INSTANCE_NIC<n>_*`` variables."""

    index: int
    name: str | None
    uuid: str | None
    mac: str
    ip: object
    mode: str | None
    link: str | None
    network: Network | None


@dataclass(frozen=True)
class HookEnv:
    """What a hook is told: the hooks path and phase, the opcode, the instance, its primary node
    before and after, its tags and its NICs."""

    path: str                   # instance-start, instance-migrate...
    phase: str                  # pre or post
    op_code: str | None
    cluster: str | None
    master: str | None
    instance: str | None
    new_name: str | None        # instance-rename: the name after it
    primary: str | None         # before the operation
    new_primary: str | None     # after it (post phase), else None
    tags: tuple
    nics: tuple


def parse_hook_env(environ):
    """The HookEnv in ``environ``; EnvVarError naming the variable for anything malformed."""
    get = EnvReader(environ, "GANETI_")
    path = get.required("HOOKS_PATH", _hooks_path)
    phase = get.required("HOOKS_PHASE", _one_of("pre", "post"))
    after = "POST_INSTANCE_" if environ.get("GANETI_POST_INSTANCE_NAME") else "INSTANCE_"
    return HookEnv(
        path=path, phase=phase, op_code=get.optional("OP_CODE", str),
        cluster=get.optional("CLUSTER", str), master=get.optional("MASTER", str),
        instance=get.optional("INSTANCE_NAME", str),
        new_name=get.optional("INSTANCE_NEW_NAME", str),
        primary=get.optional("INSTANCE_PRIMARY", str),
        new_primary=get.optional("POST_INSTANCE_PRIMARY", str),
        tags=tuple(get.optional(after + "TAGS", str.split) or ()),
        nics=_nics(environ, "GANETI_" + after))


def _nics(environ, prefix):
    count = EnvReader(environ, prefix).optional("NIC_COUNT", _count) or 0
    nics = []
    for index in range(count):
        get = EnvReader(environ, f"{prefix}NIC{index}_")
        nics.append(HookNic(
            index=index, name=get.optional("NAME", str), uuid=get.optional("UUID", str),
            mac=get.required("MAC", mac_address), ip=get.optional("IP", ipv4_address),
            mode=get.optional("MODE", str), link=get.optional("LINK", str),
            network=parse_network(get)))
    return tuple(nics)


def _hooks_path(value):
    if not _HOOKS_PATH.match(value):
        raise ValueError("is not a hooks path like instance-start")
    return value


def _count(value):
    count = int(value)
    if not 0 <= count <= 64:
        raise ValueError("is not a NIC count (0-64)")
    return count


def _one_of(*choices):
    def check(value):
        if value not in choices:
            raise ValueError(f"is not one of {', '.join(choices)}")
        return value
    return check


__all__ = ["EnvVarError", "HookEnv", "HookNic", "parse_hook_env"]
