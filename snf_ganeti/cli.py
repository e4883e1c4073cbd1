"""The ``snf-ganeti`` command: one entry point, one subcommand per task.

Each part is a module with ``register(subparsers, common)`` adding its
subcommands (listed in ``COMMANDS``), and optionally ``PART`` (its name) and
``status(config)`` returning a dict that ``snf-ganeti status`` shows under it.
Ganeti runs this command for every hook, NIC and OS script, so only the part
that owns the subcommand is imported, and the exact argv Ganeti uses (a part's
``GANETI_ARGV``) is dispatched without building the parser (``snf_ganeti.parser``).
"""

import gc
import importlib
import logging
import os
import sys
import threading
import types

from snf_ganeti import config as config_mod, logs, pathutils
from snf_ganeti.errors import SnfGanetiError

_CORE, _IFSCRIPTS = "snf_ganeti.core_cli", "snf_ganeti.ifscripts.cli"
COMMANDS = {"config": _CORE, "feed": _CORE, "status": _CORE, "spool": _CORE, "messages": _CORE,
            "eventd": "snf_ganeti.eventd.cli", "ifup": _IFSCRIPTS, "ifdown": _IFSCRIPTS,
            "dhcpd": "snf_ganeti.dhcp.cli", "hook": "snf_ganeti.hooks.cli",
            "os": "snf_ganeti.osdefinition.cli"}
PARTS = tuple(dict.fromkeys(COMMANDS.values()))

log = logging.getLogger("snf-ganeti")


def build_parser(part_names=PARTS):
    from snf_ganeti import parser
    return parser.build(parts(part_names))


def parts(names=PARTS):
    return [importlib.import_module(name) for name in names]


def command_word(argv):
    """The subcommand named in ``argv``: its first word that is not a common option; None
    when help or the version is asked for first (the whole parser answers those)."""
    words = iter(argv)
    for word in words:
        if _abbreviates(word, "--help", "--version") or \
                (word.startswith("-") and not word.startswith("--") and "h" in word):
            return None
        if _abbreviates(word, "--config"):     # argparse takes any unique prefix
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _abbreviates(word, *options):
    return len(word) > 2 and any(option.startswith(word) for option in options)


def load_config(args):
    """The validated config named by --config / $SNF_GANETI_CONFIG / the default, through
    the parse cache (Ganeti runs a command per hook, NIC and OS script)."""
    return config_mod.load(config_mod.config_path(getattr(args, "config", None)),
                           pathutils.CONFIG_CACHE)


def ganeti_args(argv):
    """The parsed arguments of an argv that Ganeti itself runs (an OS script, the NIC script,
    a hook), or None. These are dispatched without argparse, whose import and parser (with
    gettext's locale lookups) cost 3.5 ms of every such run. Each part lists its own in
    ``GANETI_ARGV`` (argv: its arguments but the command); a test checks argparse parses
    every one of them to the same."""
    part = COMMANDS.get(argv[0]) if argv else None
    if part is None:
        return None
    fields = getattr(importlib.import_module(part), "GANETI_ARGV", {}).get(tuple(argv))
    return None if fields is None else types.SimpleNamespace(command=argv[0], **fields)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = ganeti_args(argv)
    if args is None:
        part = COMMANDS.get(command_word(argv))
        args = build_parser((part,) if part else PARTS).parse_args(argv)
    logs.setup(getattr(args, "verbose", False))
    try:
        return args.handler(args) or 0
    except SnfGanetiError as err:
        print(f"snf-ganeti: error: {err}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141


def run():
    """The command's entry point: ``main``, then an exit without the interpreter's teardown.

    Freeing every module and object costs 10 to 20 ms, on every hook, NIC and OS script
    Ganeti runs. Output and logs are flushed first; a process with a thread still working
    exits the normal way, which waits for it.
    """
    gc.enable()  # the launcher disables it while snf_ganeti.cli and its imports load
    status = main()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()
           if t is not threading.main_thread()):
        sys.exit(status)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: Python started with that descriptor closed
                stream.flush()
        except BrokenPipeError:  # the reader is gone: the output was not all delivered
            status = status or 141
        except ValueError:  # a stream the command closed
            pass
    os._exit(status)


if __name__ == "__main__":
    run()
