"""Customization: snf-image's tasks, in its order, on the instance's disk.

Each task is one module in ``snf_ganeti.osdefinition.tasks`` with ``TASK`` (a
:class:`TaskInfo`: name, description, examples, attributes; the docs are
generated from it) and ``run(ctx)``. Tasks see only a :class:`Context` (the
disk, the parameters, the mounted root), never Ganeti's environment, so the
same code can run on the host or inside a helper VM.
"""

import importlib
from dataclasses import dataclass, field

from snf_ganeti.errors import CustomizationError
from snf_ganeti.osdefinition import params as params_mod
from snf_ganeti.osdefinition import progress as progress_mod

# Run order of snf-image (spec §3.4); adding a task = adding its module here.
ORDER = ("fix_partition_table", "filesystem_resize_unmounted", "mount_image",
         "filesystem_resize_mounted", "add_swap", "assign_hostname", "change_machine_id",
         "change_password", "configure_network", "delete_ssh_keys", "selinux_autorelabel",
         "enforce_personality", "run_custom_task", "umount_image")


@dataclass(frozen=True)
class TaskInfo:
    """What a customization task is: its snf-image name, its documentation, and when it runs."""

    name: str                  # snf-image's name, used in messages and EXCLUDE_TASK_<name>
    description: str
    examples: tuple = ()       # (properties or parameters, effect) pairs for the docs
    excludable: bool = True    # EXCLUDE_TASK_<name>
    mounted: bool = True       # needs the root filesystem mounted (EXCLUDE_MOUNTED_TASKS)
    resize: bool = False       # EXCLUDE_FILESYSTEMRESIZE_TASKS


@dataclass(frozen=True)
class NetworkSettings:
    """The network tags that mean DHCP, DHCPv6 or SLAAC, and what a lone NIC without an address
    or network gets (from the ``osdefinition`` section)."""

    dhcp_tags: tuple = ("auto", "dhcp", "nfdhcpd")
    stateful_dhcpv6_tags: tuple = ("dhcpv6", "stateful_dhcpv6")
    stateless_dhcpv6_tags: tuple = ("nfdhcpd", "stateless_dhcpv6")
    default_nic_config: str = "dhcp"


@dataclass
class Context:
    """What the tasks share: inputs (fixed) and what earlier tasks found (filled in)."""

    disk: object               # devices.Disk, attached
    hostname: str
    params: params_mod.OSParams
    nics: tuple
    network: NetworkSettings
    report: object             # progress.Progress
    workdir: str
    root_partition: int = None
    resize_partition: int = None
    swap_partition: int = None
    target: str = None
    guest: object = None
    notes: dict = field(default_factory=dict)

    def prop(self, key, default=None):
        return self.params.prop(key, default)

    def flag(self, key):
        return params_mod.parse_bool(self.prop(key))

    def warn(self, text):
        self.report.warning(text)


def tasks():
    return [importlib.import_module(f"{__package__}.tasks.{name}") for name in ORDER]


def excluded(ctx, info):
    """Why ``info`` must not run, or None."""
    if info.excludable and ctx.flag(f"EXCLUDE_TASK_{info.name}"):
        return f"Task {info.name} was excluded and will not run."
    if info.mounted and ctx.flag("EXCLUDE_MOUNTED_TASKS"):
        return f"Task {info.name} was excluded (EXCLUDE_MOUNTED_TASKS) and will not run."
    if info.resize and ctx.flag("EXCLUDE_FILESYSTEMRESIZE_TASKS"):
        return f"Task {info.name} was excluded (EXCLUDE_FILESYSTEMRESIZE_TASKS) and will not run."
    return None


def run_all(ctx):
    """Run every task in order; the first failure is reported and raised. (EXCLUDE_ALL_TASKS
    is the caller's to honour: then not even the disk is attached.)"""
    for module in tasks():
        info = module.TASK
        ctx.report.emit(progress_mod.helper("task-start", task=info.name))
        reason = excluded(ctx, info)
        if reason:
            ctx.warn(reason)
        else:
            _run_one(ctx, module)
        ctx.report.emit(progress_mod.helper("task-end", task=info.name))


def _run_one(ctx, module):
    name = module.TASK.name
    try:
        module.run(ctx)
    except CustomizationError as err:
        ctx.report.emit(progress_mod.helper("error", text=str(err)))
        raise
    except OSError as err:
        problem = f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")
        ctx.report.emit(progress_mod.helper("error", text=f"{name}: {problem}"))
        raise CustomizationError(name, problem) from err


def docs():
    """The markdown section of docs/osdefinition.md that lists the tasks."""
    lines = []
    for module in tasks():
        info = module.TASK
        attrs = [a for a, on in (("excludable", info.excludable), ("needs the mounted root",
                                 info.mounted), ("a resize task", info.resize)) if on]
        lines += [f"### {info.name}", "", info.description, "",
                  f"*{', '.join(attrs) or 'always runs'}*", ""]
        lines += [f"- `{example}`: {effect}" for example, effect in info.examples]
        lines += [""] if info.examples else []
    return "\n".join(lines).rstrip() + "\n"
