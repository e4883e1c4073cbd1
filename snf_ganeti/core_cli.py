"""Core subcommands: config, feed, status, spool, messages."""

import json
import sys

import yaml

from snf_ganeti import cli, config as config_mod, messages
from snf_ganeti.errors import BrokerError, MessageError
from snf_ganeti.spool import Spool


def register(sub, common):
    cfg = sub.add_parser("config", parents=[common], help="check or show the configuration",
                         description="Check or show the configuration.")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    p = cfg_sub.add_parser("check", parents=[common], help="validate and print the effective config",
                           description="Validate the config file and print the effective "
                                       "configuration, secrets masked. Exit status 2 if invalid.")
    p.set_defaults(handler=config_check)
    p = cfg_sub.add_parser("defaults", parents=[common], help="print the default config file",
                           description="Print a config file with every key at its default.")
    p.set_defaults(handler=lambda args: print(config_mod.render_defaults(), end=""))

    p = sub.add_parser("feed", parents=[common], help="print messages as they arrive",
                       description="Bind a temporary queue to the exchange and print each message "
                                   "as it arrives.")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--count", type=int, default=0, metavar="N", help="exit after N messages")
    p.add_argument("--timeout", type=float, default=0, metavar="SECONDS",
                   help="exit (status 1) after SECONDS without a message")
    p.add_argument("--key", action="append", metavar="PATTERN",
                   help="binding key (repeatable; default: '#', everything)")
    p.set_defaults(handler=run_feed)

    p = sub.add_parser("status", parents=[common], help="broker, spool and parts at a glance",
                       description="Show whether the broker is reachable, the spool's depth and "
                                   "the age of its oldest message, and each part's state.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=show_status)

    spool = sub.add_parser("spool", parents=[common], help="inspect or deliver the spool",
                           description="Inspect or deliver the on-disk message spool.")
    spool_sub = spool.add_subparsers(dest="spool_command", metavar="ACTION", required=True)
    p = spool_sub.add_parser("flush", parents=[common], help="deliver spooled messages",
                             description="Deliver spooled messages to the broker. Exit 0 when the "
                                         "spool is empty, 1 when messages remain.")
    p.add_argument("--timeout", type=float, default=30, metavar="SECONDS",
                   help="give up after SECONDS (default 30)")
    p.add_argument("--follow", action="store_true",
                   help="keep delivering until interrupted (what the daemons do)")
    p.set_defaults(handler=spool_flush)

    msg = sub.add_parser("messages", parents=[common], help="message types and schemas",
                         description="The message types snf-ganeti publishes.")
    msg_sub = msg.add_subparsers(dest="messages_command", metavar="ACTION", required=True)
    p = msg_sub.add_parser("docs", parents=[common], help="print docs/messages.md",
                           description="Print the Markdown reference of every message type.")
    p.set_defaults(handler=lambda args: print(messages.render_docs(), end=""))
    p = msg_sub.add_parser("schema", parents=[common], help="print one type's JSON Schema",
                           description="Print the JSON Schema of one message type.")
    p.add_argument("type", choices=[t.name for t in messages.TYPES])
    p.set_defaults(handler=print_schema)
    p = msg_sub.add_parser("validate", parents=[common], help="validate JSON messages on stdin",
                           description="Validate one JSON message per line of stdin (a bare body "
                                       "or a `feed --json` record). Exit 1 if any is invalid.")
    p.set_defaults(handler=validate_stdin)


def config_check(args):
    path = config_mod.config_path(getattr(args, "config", None))
    config = config_mod.load(path)
    print(f"# {path}: valid")
    print(yaml.safe_dump(config_mod.masked(config), sort_keys=False), end="")


def run_feed(args):
    from snf_ganeti import feed     # pika: loaded by the commands that talk to a broker only
    config = cli.load_config(args)
    keys = args.key or ["#"]

    def emit(routing_key, message_id, raw):
        if args.json:
            print(json.dumps(feed.record(routing_key, message_id, raw)), flush=True)
        else:
            body = feed.record(routing_key, message_id, raw)["body"]
            print(f"{_now()}  {feed.describe(routing_key, body)}", flush=True)

    ready = lambda: print(f"listening on exchange {config.amqp.exchange!r} "  # noqa: E731
                          f"with keys {', '.join(keys)}", file=sys.stderr, flush=True)
    received = feed.run(config.amqp, keys, args.count, args.timeout, emit, ready)
    return 1 if args.count and received < args.count else 0


def _now():
    import datetime
    return datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]


def core_status(config):
    from snf_ganeti import broker
    depth, age = Spool(config.amqp.spool_dir).stats()
    try:
        connection, index = broker.connect(config.amqp)
        connection.close()
        broker = f"reachable at {config_mod.mask_url(config.amqp.urls[index])}"
    except BrokerError as err:
        broker = f"UNREACHABLE: {err}"
    return {"broker": broker, "spool_dir": config.amqp.spool_dir, "spool_depth": depth,
            "oldest_spooled_seconds": None if age is None else round(age, 1)}


def show_status(args):
    config = cli.load_config(args)
    report = {"core": core_status(config)}
    for module in cli.parts():
        if hasattr(module, "status") and module.__name__ != __name__:
            report[module.PART] = module.status(config)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for part, values in report.items():
            print(f"{part}:")
            for key, value in values.items():
                print(f"  {key}: {value}")
    return 0 if report["core"]["broker"].startswith("reachable") else 1


def spool_flush(args):
    from snf_ganeti import publisher
    config = cli.load_config(args)
    sender = publisher.Publisher(config.amqp)
    if args.follow:
        try:
            sender.serve(lambda: False)
        finally:
            sender.close()
    delivered = sender.flush(args.timeout)
    sender.close()
    depth, _ = sender.spool.stats()
    print(f"{sender.confirmed} delivered, {depth} still spooled")
    return 0 if delivered and depth == 0 else 1


def print_schema(args):
    (message_type,) = [t for t in messages.TYPES if t.name == args.type]
    print(json.dumps(message_type.schema, indent=2, sort_keys=True))


def validate_stdin(args):
    bad = 0
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
            if isinstance(body, dict) and "routing_key" in body and "body" in body:
                body = body["body"]
            messages.validate(body)
        except (ValueError, MessageError) as err:
            bad += 1
            print(f"line {number}: {err}", file=sys.stderr)
    return 1 if bad else 0
