"""The ``snf-ganeti`` command: one entry point, one subcommand per task.

Each part is a module in ``PARTS`` with ``register(subparsers, common)``
adding its subcommands, and optionally ``PART`` (its name) and
``status(config)`` returning a dict that ``snf-ganeti status`` shows under it.
"""

import argparse
import importlib
import logging
import sys

from snf_ganeti import __version__, config as config_mod, logs
from snf_ganeti.errors import SnfGanetiError

PARTS = ("snf_ganeti.core_cli", "snf_ganeti.eventd.cli", "snf_ganeti.ifscripts.cli",
         "snf_ganeti.dhcp.cli", "snf_ganeti.hooks.cli", "snf_ganeti.osdefinition.cli")

log = logging.getLogger("snf-ganeti")


def common_options():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="configuration file (default: $SNF_GANETI_CONFIG, "
                             "else /etc/snf-ganeti/snf-ganeti.yaml)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log debugging detail")
    return common


def build_parser():
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="snf-ganeti", parents=[common],
        description="Host-side agent of a Ganeti cloud: Ganeti's events as AMQP messages.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in parts():
        module.register(sub, common)
    return parser


def parts():
    return [importlib.import_module(name) for name in PARTS]


def load_config(args):
    """The validated config named by --config / $SNF_GANETI_CONFIG / the default."""
    return config_mod.load(config_mod.config_path(getattr(args, "config", None)))


def main(argv=None):
    args = build_parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
