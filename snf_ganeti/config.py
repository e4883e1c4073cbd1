"""The snf-ganeti configuration: one YAML file loaded into typed dataclasses.

Each section is a frozen dataclass; each field carries its one-line
documentation in ``metadata["doc"]`` and optionally a ``check`` callable, so
the loader, ``etc/snf-ganeti.yaml`` and ``snf-ganeti config defaults`` all come
from the same definitions. A later part adds its section by adding one
dataclass to ``SECTIONS``.
"""

import dataclasses
import os
import time
import types
from dataclasses import dataclass, field

from snf_ganeti import configcache, pathutils
from snf_ganeti.errors import ConfigError


def _opt(default, doc, check=None, **metadata):
    return field(default=default, metadata={"doc": doc, "check": check, **metadata})


# ipaddress and urllib.parse are imported by the functions that use them: every command loads
# the configuration, and most configurations set none of the keys they check (3 ms).

def check_amqp_url(url):
    """Return a problem string for a bad broker URL, else None."""
    import urllib.parse
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("amqp", "amqps"):
        return "must start with amqp:// or amqps://"
    try:
        parts.port
    except ValueError:
        return "has a bad port"
    if not parts.hostname:
        return "has no host"
    if "ssl_options" in urllib.parse.parse_qs(parts.query):
        # pika's own TLS options: unverified unless they name a CA, and a key passphrase in
        # them would show wherever the URL does.
        return "carries ssl_options; use amqp.tls_ca_file, tls_cert_file and tls_key_file"
    return None


def _check_urls(urls):
    if not urls:
        return "must list at least one broker URL"
    for i, url in enumerate(urls):
        problem = check_amqp_url(url)
        if problem:
            return f"[{i}] {mask_url(url)!r} {problem}"
    return None


def _positive(value):
    return None if value > 0 else "must be greater than 0"


def _not_negative(value):
    return None if value >= 0 else "must not be negative"


def _absolute(path):
    return None if path is None or os.path.isabs(path) else "must be an absolute path"


def _absolute_or_empty(path):
    return None if not path else _absolute(path)


def mask_url(url):
    """The URL with its password replaced, for logs, errors and output."""
    import urllib.parse
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True)
class AmqpConfig:
    """The ``amqp`` section: which brokers (and their TLS), which exchange, and the spool that
    holds messages until a broker confirms them."""

    urls: tuple[str, ...] = _opt(
        ("amqp://guest:guest@localhost:5672/",),
        "broker URLs (amqp:// or amqps://), tried in order; list every node of a RabbitMQ cluster",
        _check_urls)
    exchange: str = _opt("ganeti", "topic exchange the messages go to (declared durable, as Synnefo does)")
    spool_dir: str = _opt(pathutils.SPOOL_DIR,
                          "messages wait here, fsync'd, until the broker confirms them", _absolute)
    connect_timeout: float = _opt(5.0, "seconds to wait for one broker connection attempt", _positive)
    confirm_timeout: float = _opt(10.0, "seconds an OS script, or a daemon stopping, waits for the "
                                        "broker before leaving its messages to the spool (hooks: "
                                        "hooks.publish_timeout)", _positive)
    max_backoff: float = _opt(30.0, "longest pause, in seconds, between reconnection attempts", _positive)
    heartbeat: int = _opt(60, "AMQP heartbeat interval in seconds", _positive)
    tls_ca_file: str = _opt("", "CA certificates (PEM) an amqps:// broker's certificate must "
                                "chain to; empty: the system's (ca-certificates)",
                            _absolute_or_empty)
    tls_cert_file: str = _opt("", "client certificate (PEM) for amqps:// brokers that ask for "
                                  "one; empty: none", _absolute_or_empty)
    tls_key_file: str = _opt("", "the client certificate's private key (PEM); empty: it is in "
                                 "tls_cert_file", _absolute_or_empty)


@dataclass(frozen=True)
class GanetiConfig:
    """The ``ganeti`` section: where this node's Ganeti keeps its data and its job queue."""

    data_dir: str = _opt(pathutils.GANETI_DATA_DIR,
                         "Ganeti's data directory (ssconf_* files and config.data)", _absolute)
    queue_dir: str | None = _opt(
        None, "Ganeti's job queue directory; empty means <data_dir>/queue", _absolute)

    @property
    def job_queue_dir(self):
        return self.queue_dir or pathutils.ganeti_queue_dir(self.data_dir)


@dataclass(frozen=True)
class EventdConfig:
    """The ``eventd`` section: where eventd records what it published, this node's name, the
    heartbeat period, whether its first start publishes old jobs too, and what a new master
    publishes again."""

    state_dir: str = _opt(pathutils.EVENTD_STATE_DIR,
                          "what eventd published is recorded here, so a restart sends only "
                          "what it missed", _absolute)
    node_name: str = _opt("", "this node's name as Ganeti knows it; empty means the FQDN")
    heartbeat_interval: float = _opt(60.0, "seconds between timed eventd-heartbeat messages; "
                                           "0 sends only those the dispatcher asks for",
                                    _not_negative)
    replay_history: bool = _opt(False, "on the very first start, also publish jobs that "
                                       "finished before eventd ever ran")
    failover_replay: float = _opt(120.0, "on becoming master, publish again what this node saw "
                                         "change in this many seconds before the last change "
                                         "it saw as a standby (the old master may have missed "
                                         "it); 0 turns it off", _not_negative)


def _one_of(*choices):
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def _check_profiles(value):
    from snf_ganeti.ifscripts.firewall import check_profiles
    return check_profiles(value)


def _default_profiles():
    from snf_ganeti.ifscripts.default_profiles import DEFAULT_PROFILES
    return DEFAULT_PROFILES


def _check_routed_mark(value):
    if not 0 < value < 2 ** 32 or value & 0xFFFF:
        return "must be a 32-bit mark whose low 16 bits are 0 (the table number goes there)"
    return None


@dataclass(frozen=True)
class NetworkConfig:
    """The ``network`` section: the NIC script's firewall backend and profiles, private-network
    bridges, and the marks of routed NICs."""

    firewall_backend: str = _opt("nftables", "nftables (one table, atomic per NIC; Debian 12's "
                                             "default) or iptables (python-iptables)",
                                 _one_of("nftables", "iptables"))
    profiles: dict = field(default_factory=_default_profiles, metadata={
        "doc": "firewall profiles named by instance tags synnefo:network:<nic>:<profile>; "
               "each has a default verdict (accept or drop) and accept rules (proto, dport, "
               "sport, not_syn, icmp_types) for traffic toward the VM",
        "check": _check_profiles})
    private_bridge_prefix: str = _opt("prv", "bridges named <prefix><N> are private networks, "
                                             "created on demand over a VLAN or VXLAN")
    private_transport: str = _opt("vxlan", "what private bridges run over: vlan or vxlan",
                                  _one_of("vlan", "vxlan"))
    private_uplink: str = _opt("", "device that carries private networks (VLAN parent, or the "
                                   "VXLAN underlay); empty: the default route's device")
    private_id_offset: int = _opt(0, "VLAN id / VXLAN VNI = N + this offset")
    vxlan_group: str = _opt("239.1.1.1", "multicast group of the VXLAN underlay")
    vxlan_port: int = _opt(4789, "UDP port of the VXLAN underlay", _positive)
    mac_filter_mask: str = _opt("ff:ff:f0:00:00:00", "on private networks a VM receives only "
                                                     "frames whose source MAC shares its own "
                                                     "MAC under this mask")
    routed_mark: int = _opt(0x534E0000, "packets from a routed NIC get firewall mark "
                                        "routed_mark + the link's routing table number (at "
                                        "most 65535), and one policy rule per link sends "
                                        "that mark to the table; the low 16 bits must be 0",
                            _check_routed_mark, hex=True)
    state_dir: str = _opt(pathutils.IFSCRIPTS_STATE_DIR, "what ifup set up for each tap, so "
                                                         "ifdown can undo it", _absolute)


def _ip_check(version, many=False):
    def check(value):
        import ipaddress
        for item in (value if many else (value,)):
            try:
                if ipaddress.ip_address(item).version != version:
                    raise ValueError
            except ValueError:
                return f"{item!r} is not an IPv{version} address"
        return None
    return check


def _check_seconds(value):
    return None if 0 < value < 2 ** 32 else "must be between 1 and 4294967295 seconds"


def _check_mtu(value):
    return None if 68 <= value <= 65535 else "must be between 68 and 65535"


def _check_queue(value):
    return None if 0 <= value <= 65535 else "must be a queue number (0-65535)"


def _check_routes(routes):
    import ipaddress
    for route in routes:
        parts = route.split()
        try:
            ipaddress.IPv4Network(parts[0])
            if len(parts) != 2:
                raise ValueError
            if parts[1] != "gateway":
                ipaddress.IPv4Address(parts[1])
        except (ValueError, IndexError):
            return f"{route!r} is not 'CIDR GATEWAY' (GATEWAY: an address or the word gateway)"
    return None


@dataclass(frozen=True)
class DhcpConfig:
    """The ``dhcp`` section: which packets dhcpd takes from which NFQUEUEs, and what its
    replies offer (DNS, leases, routes, IPv6 mode)."""

    bindings_dir: str = _opt(pathutils.DHCP_BINDINGS_DIR, "one binding file per tap, written "
                                                          "by ifup, read by dhcpd", _absolute)
    status_file: str = _opt(pathutils.DHCP_STATUS_FILE, "dhcpd's counters, for snf-ganeti "
                                                        "status", _absolute)
    interfaces: tuple[str, ...] = _opt(("tap+",), "host interfaces VM packets arrive on "
                                                  "(iptables syntax: a trailing + is a wildcard)")
    dhcp_queue: int | None = _opt(42, "NFQUEUE for DHCPv4 requests; empty: no DHCPv4",
                                  _check_queue)
    rs_queue: int | None = _opt(43, "NFQUEUE for router solicitations; empty: none",
                                _check_queue)
    ns_queue: int | None = _opt(44, "NFQUEUE for neighbour solicitations; empty: none",
                                _check_queue)
    dhcpv6_queue: int | None = _opt(45, "NFQUEUE for DHCPv6 (stateless); empty: none",
                                    _check_queue)
    fail_open: bool = _opt(False, "while dhcpd is not running, let queued packets pass (queue "
                                  "bypass) instead of dropping them")
    server_ip: str | None = _opt(None, "source and server identifier of DHCPv4 "
                                       "replies; empty: the binding's GATEWAY, else "
                                       "the first address of its SUBNET", _ip_check(4))
    nameservers: tuple[str, ...] = _opt((), "IPv4 DNS servers (option 6)", _ip_check(4, True))
    nameservers6: tuple[str, ...] = _opt((), "IPv6 DNS servers (RA RDNSS, DHCPv6 option 23)",
                                         _ip_check(6, True))
    domain: str | None = _opt(None, "DNS domain (option 15, DHCPv6 option 24); "
                                    "empty: the part of HOSTNAME after its first dot")
    lease_time: int = _opt(604800, "DHCPv4 lease time in seconds (option 51)", _check_seconds)
    renewal_time: int = _opt(3600, "seconds until the client renews (option 58, T1)",
                             _check_seconds)
    rebinding_time: int | None = _opt(None, "seconds until the client rebinds "
                                            "(option 59, T2); empty: 7/8 of the lease",
                                      _check_seconds)
    mtu: int | None = _opt(None, "MTU offered (option 26, RA MTU) when the binding "
                                 "has no MTU; empty: none", _check_mtu)
    routes: tuple[str, ...] = _opt((), "classless static routes (option 121) as 'CIDR "
                                       "GATEWAY', GATEWAY an address or the word gateway",
                                   _check_routes)
    ipv6_mode: str = _opt("slaac+dhcpv6", "slaac+dhcpv6 (RA O flag: ask DHCPv6 for DNS) or "
                                          "slaac", _one_of("slaac+dhcpv6", "slaac"))
    ra_period: int = _opt(300, "seconds between unsolicited router advertisements", _positive)


@dataclass(frozen=True)
class HooksConfig:
    """The ``hooks`` section: how long a hook may run and wait for the broker, and whether its
    failure fails the Ganeti job."""

    timeout: float = _opt(20.0, "seconds a hook may run before it gives up (logged, and the "
                                "Ganeti job goes on)", _positive)
    publish_timeout: float = _opt(5.0, "seconds a hook waits for the broker; after that its "
                                       "message stays in the spool for eventd to deliver",
                                  _positive)
    strict: bool = _opt(False, "fail the Ganeti job when a hook fails (default: log and go on)")


@dataclass(frozen=True)
class OSDefinitionConfig:
    """The ``osdefinition`` section: the image store, where images are customized, progress
    reports, and the network tags that decide how the guest configures its NICs."""

    image_dir: str = _opt(pathutils.IMAGE_DIR, "local image store: img_id NAME or local://NAME "
                                               "names a file here", _absolute)
    work_dir: str = _opt(pathutils.OS_WORK_DIR, "the image's filesystems are mounted (nosuid, "
                                                "nodev, noexec) under here while customized",
                         _absolute)
    progress_interval: float = _opt(3.0, "seconds between image-copy-progress messages", _positive)
    publish_progress: bool = _opt(True, "relay progress as ganeti-create-progress messages (AMQP)")
    http_timeout: float = _opt(30.0, "seconds an http(s) image source may stay silent", _positive)
    default_nic_config: str = _opt("dhcp", "what a lone NIC with no address or network gets: "
                                           "dhcp, dhcpv6, slaac, dhcp+slaac or none",
                                   _one_of("dhcp", "dhcpv6", "slaac", "dhcp+slaac", "none"))
    dhcp_tags: tuple[str, ...] = _opt(("auto", "dhcp", "nfdhcpd"),
                                      "network tags that mean IPv4 by DHCP")
    stateful_dhcpv6_tags: tuple[str, ...] = _opt(("dhcpv6", "stateful_dhcpv6"),
                                                 "network tags that mean IPv6 by DHCPv6")
    stateless_dhcpv6_tags: tuple[str, ...] = _opt(("nfdhcpd", "stateless_dhcpv6"),
                                                  "network tags that mean SLAAC plus DHCPv6")


SECTIONS = {
    "amqp": AmqpConfig,
    "ganeti": GanetiConfig,
    "eventd": EventdConfig,
    "network": NetworkConfig,
    "dhcp": DhcpConfig,
    "hooks": HooksConfig,
    "osdefinition": OSDefinitionConfig,
}

Config = dataclasses.make_dataclass(
    "Config",
    [(name, cls, field(default_factory=cls)) for name, cls in SECTIONS.items()],
    frozen=True, namespace={"__doc__": "The whole configuration: one attribute per section."})


def config_path(explicit=None, environ=os.environ):
    """Where the config comes from: --config, then $SNF_GANETI_CONFIG, then the default."""
    return explicit or environ.get(pathutils.CONFIG_ENV) or pathutils.CONFIG_FILE


def load(path, cache_path=None):
    """Read, parse and validate the YAML file at ``path``; with ``cache_path``, through the
    parse cache there (see configcache)."""
    raw, read_at = None, time.time()
    try:
        with open(path, encoding="utf-8") as stream:
            stat = os.fstat(stream.fileno())
            if cache_path:
                raw = configcache.read(cache_path, path, stat)
            if raw is None:
                text = stream.read()
    except FileNotFoundError:
        raise ConfigError(path, None, "file not found") from None
    except OSError as err:
        raise ConfigError(path, None, f"cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(path, None, f"not UTF-8 text (byte {err.start})") from None
    if raw is None:
        raw = parse_yaml(text, path)
        if cache_path:
            configcache.write(cache_path, path, stat, raw, read_at)
    return build(raw, path)


def parse(text, path="<string>"):
    return build(parse_yaml(text, path), path)


def parse_yaml(text, path="<string>"):
    """The YAML text as a mapping of sections, not yet validated."""
    import yaml  # here, not above: a command whose config is cached never needs it
    try:
        # libyaml's parser where PyYAML has it (Debian's and PyPI's do): 10 times faster than
        # the pure-Python one on the full default file. They differ only on odd files (a tab
        # after a colon, a lone surrogate), and validation checks every value either way.
        raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(path, None, f"not valid YAML{line}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, None, "must be a mapping of sections")
    return raw


def build(raw, path="<string>"):
    """The validated Config from a parsed mapping of sections."""
    sections = {}
    for name, value in raw.items():
        if name not in SECTIONS:
            raise ConfigError(path, str(name), f"unknown section (known: {', '.join(SECTIONS)})")
        sections[name] = _build_section(SECTIONS[name], value, name, path)
    return Config(**sections)


def _build_section(cls, raw, section, path):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, section, "must be a mapping")
    known = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        dotted = f"{section}.{key}"
        if key not in known:
            raise ConfigError(path, dotted, "unknown key")
        values[key] = _coerce(known[key].type, value, dotted, path)
        check = known[key].metadata.get("check")
        problem = check(values[key]) if check and values[key] is not None else None
        if problem:
            raise ConfigError(path, dotted, problem)
    return cls(**values)


def _coerce(hint, value, dotted, path):
    """Check ``value`` against the type hint; YAML lists become tuples. The hints are the
    classes' own (``str | None``, ``tuple[str, ...]``): typing is not imported (3 ms)."""
    if isinstance(hint, types.UnionType):
        if value is None or value == "":
            return None
        (hint,) = [h for h in hint.__args__ if h is not type(None)]
    origin = getattr(hint, "__origin__", None)
    if origin is tuple:
        item = hint.__args__[0]
        if isinstance(value, str) or not isinstance(value, list):
            raise ConfigError(path, dotted, f"must be a list of {_type_name(item)}")
        return tuple(_coerce(item, v, f"{dotted}[{i}]", path) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, dotted, "must be a mapping")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(path, dotted, f"must be {_type_name(hint)}, not {_yaml_type(value)}")
    return value


def _type_name(hint):
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def _yaml_type(value):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping", type(None): "empty"}.get(type(value), type(value).__name__)


def masked(config):
    """The effective configuration as plain data, with secrets masked."""
    data = dataclasses.asdict(config)
    data["amqp"]["urls"] = [mask_url(u) for u in config.amqp.urls]
    return _plain(data)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def render_defaults():
    """The default configuration file, every key with its default and a comment."""
    import yaml
    lines = ["# snf-ganeti configuration. Every key is shown with its default value.",
             "# Remove a key (or a whole section) to keep its default.", ""]
    for name, cls in SECTIONS.items():
        lines.append(f"{name}:")
        for f in dataclasses.fields(cls):
            lines.append(f"  # {f.metadata['doc']}")
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            dumped = yaml.safe_dump({f.name: _plain(default) if default is not None else ""},
                                    default_flow_style=None if isinstance(default, dict) else False,
                                    sort_keys=False, width=100).rstrip()
            if f.metadata.get("hex"):  # a mark reads better as hex; YAML takes 0x... as int
                dumped = f"{f.name}: {default:#x}"
            lines.extend("  " + line for line in dumped.splitlines())
        lines.append("")
    return "\n".join(lines)
