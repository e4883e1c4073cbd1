"""The ``snf-ganeti`` command: one entry point, one subcommand per task.

Each part is a module with ``register(subparsers, common)`` adding its
subcommands (listed in ``COMMANDS``), and optionally ``PART`` (its name) and
``status(config)`` returning a dict that ``snf-ganeti status`` shows under it.
Ganeti runs this command for every hook, NIC and OS script, so only the part
that owns the subcommand is imported.
"""

import argparse
import importlib
import logging
import os
import sys
import threading

from snf_ganeti import __version__, config as config_mod, logs, pathutils
from snf_ganeti.errors import SnfGanetiError

_CORE, _IFSCRIPTS = "snf_ganeti.core_cli", "snf_ganeti.ifscripts.cli"
COMMANDS = {"config": _CORE, "feed": _CORE, "status": _CORE, "spool": _CORE, "messages": _CORE,
            "eventd": "snf_ganeti.eventd.cli", "ifup": _IFSCRIPTS, "ifdown": _IFSCRIPTS,
            "dhcpd": "snf_ganeti.dhcp.cli", "hook": "snf_ganeti.hooks.cli",
            "os": "snf_ganeti.osdefinition.cli"}
PARTS = tuple(dict.fromkeys(COMMANDS.values()))

log = logging.getLogger("snf-ganeti")


class Formatter(argparse.HelpFormatter):
    """argparse's formatter, sized without ``shutil``: argparse imports it for the terminal
    width on every parser built, and with it bz2, lzma and fnmatch (4 ms on every command)."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns():
    # shutil.get_terminal_size's rules: $COLUMNS, then the terminal on stdout, then 80.
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class Parser(argparse.ArgumentParser):
    """Every parser of the command; subcommands' parsers are built as their parent's class."""

    def __init__(self, *args, formatter_class=Formatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def common_options():
    common = Parser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="configuration file (default: $SNF_GANETI_CONFIG, "
                             "else /etc/snf-ganeti/snf-ganeti.yaml)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log debugging detail")
    return common


def build_parser(part_names=PARTS):
    common = common_options()
    parser = Parser(
        prog="snf-ganeti", parents=[common],
        description="Host-side agent of a Ganeti cloud: Ganeti's events as AMQP messages.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in parts(part_names):
        module.register(sub, common)
    return parser


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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
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
