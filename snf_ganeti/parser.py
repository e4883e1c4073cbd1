"""The argparse parser of the ``snf-ganeti`` command, built from the parts' ``register``.

Separate from ``cli`` so that the argv Ganeti runs (an OS script, the NIC script, a hook)
is dispatched without importing argparse at all (see ``cli.ganeti_args``).
"""

import argparse
import os
import sys

from snf_ganeti import __version__


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


def build(part_modules):
    """The whole parser, with the subcommands of the given part modules."""
    common = common_options()
    parser = Parser(
        prog="snf-ganeti", parents=[common],
        description="Host-side agent of a Ganeti cloud: Ganeti's events as AMQP messages.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in part_modules:
        module.register(sub, common)
    return parser
