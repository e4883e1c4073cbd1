"""``snf-ganeti os ...``: the Ganeti OS scripts of the snf-image OS, and its installation."""

import functools
import os
import sys

from snf_ganeti import cli, pathutils

PART = "osdefinition"
SCRIPT_HELP = {
    "create": ("deploy the image onto disk 0 and customize it (Ganeti's create)",
               "Copy the image named by the OS parameters (OSP_IMG_ID, OSP_IMG_FORMAT, ...) onto "
               "the instance's first disk and customize it, reporting progress as "
               "[MONITOR] lines and ganeti-create-progress messages. Reads only the environment "
               "Ganeti gives OS scripts (OS API 20)."),
    "import": ("write stdin onto the disk (Ganeti's import)",
               "Write the data on stdin onto IMPORT_DEVICE (or IMPORT_DISK_PATH)."),
    "export": ("stream the disk to stdout (Ganeti's export)",
               "Write EXPORT_DEVICE (or EXPORT_DISK_PATH) to stdout; its size in bytes to "
               "EXP_SIZE_FD first if set."),
    "rename": ("accept an instance rename (Ganeti's rename)",
               "Nothing in the image needs to change; exits 0."),
    "verify": ("check the OS parameters (Ganeti's verify)",
               "Check the OS API version, the variant and every OS parameter given as OSP_*; "
               "exit 3 (missing), 4 (invalid) or 5 (conflicting) with a line naming it."),
}


def register(sub, common):
    p = sub.add_parser("os", parents=[common], help="the snf-image Ganeti OS: deploy images",
                       description="The Ganeti OS snf-image+default (snf-image compatible).")
    scripts = p.add_subparsers(dest="script", metavar="SCRIPT", required=True)
    for name, (short, long) in SCRIPT_HELP.items():
        s = scripts.add_parser(name, parents=[common], help=short, description=long)
        if name == "verify":
            s.add_argument("what", nargs="*", default=["parameters"],
                           help="what to verify (Ganeti passes 'parameters')")
        s.set_defaults(handler=HANDLERS[name])
    s = scripts.add_parser(
        "install-definition", parents=[common], help="write the OS definition directory",
        description="Write ganeti_api_version, variants.list, parameters.list and the thin "
                    "create/import/export/rename/verify scripts into DIR.")
    s.add_argument("directory", nargs="?", default=pathutils.OS_DEFINITION_DIR,
                   help=f"where (default {pathutils.OS_DEFINITION_DIR})")
    s.add_argument("--command", default=pathutils.SNF_GANETI_BIN,
                   help="the snf-ganeti command the scripts run (words split on spaces)")
    s.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="a variable the scripts export first (e.g. SNF_GANETI_CONFIG=...)")
    s.set_defaults(handler=_install)
    s = scripts.add_parser("tasks", parents=[common], help="list the customization tasks",
                           description="Print the customization tasks, in order, as markdown.")
    s.set_defaults(handler=_tasks)


def _script(args, name):
    """Run one OS script; ``name`` is Ganeti's (create, import, export, rename, verify)."""
    from snf_ganeti.osdefinition import create, diskio
    if name == "create":  # the others need no configuration
        create.create(cli.load_config(args), os.environ)
    elif name == "verify":
        diskio.verify(os.environ, tuple(args.what))
    else:
        {"import": diskio.import_, "export": diskio.export, "rename": diskio.rename}[name](
            os.environ)
    return 0


HANDLERS = {name: functools.partial(_script, name=name) for name in SCRIPT_HELP}


def _ganeti_run(name, **fields):
    return {"script": name, "handler": HANDLERS[name], **fields}


# The argv of Ganeti's calls (the definition's scripts pass theirs on): see cli.ganeti_args.
GANETI_ARGV = {("os", "create"): _ganeti_run("create"), ("os", "import"): _ganeti_run("import"),
               ("os", "export"): _ganeti_run("export"), ("os", "rename"): _ganeti_run("rename"),
               ("os", "verify", "parameters"): _ganeti_run("verify", what=["parameters"])}


def _install(args):
    from snf_ganeti.osdefinition import definition
    env = [tuple(item.split("=", 1)) for item in args.env]
    for name in definition.install(args.directory, args.command.split(), env):
        print(os.path.join(args.directory, name))
    return 0


def _tasks(args):
    from snf_ganeti.osdefinition import customize
    sys.stdout.write(customize.docs())
    return 0


def status(config):
    try:
        images = sorted(n for n in os.listdir(config.osdefinition.image_dir)
                        if not n.endswith(".sha256"))
    except OSError:
        images = []
    return {"image_dir": config.osdefinition.image_dir, "images": len(images)}
