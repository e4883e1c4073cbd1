import os
import subprocess
import sys

import pytest

from snf_ganeti import config as config_mod
from snf_ganeti.errors import ConfigError

pytestmark = pytest.mark.unit
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_check(path, env=None):
    return subprocess.run([sys.executable, "-m", "snf_ganeti.cli", "--config", str(path),
                           "config", "check"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("text, key, problem", [
    ("amqp:\n  exchnage: ganeti\n", "amqp.exchnage", "unknown key"),
    ("amqp:\n  connect_timeout: soon\n", "amqp.connect_timeout", "must be a number"),
    ("amqp:\n  urls: ['http://broker:5672/']\n", "amqp.urls", "must start with amqp://"),
    ("amqp:\n  urls: amqp://broker/\n", "amqp.urls", "must be a list"),
    ("amqp:\n  urls: ['amqp://broker:notaport/']\n", "amqp.urls", "bad port"),
    ("amqp:\n  heartbeat: true\n", "amqp.heartbeat", "must be an integer"),
    ("ganeti:\n  data_dir: relative/dir\n", "ganeti.data_dir", "absolute path"),
    ("amqp:\n  tls_ca_file: ca.pem\n", "amqp.tls_ca_file", "absolute path"),
    ("amqp:\n  urls: [\"amqps://u:pw@mq/?ssl_options={'password':'kp'}\"]\n", "amqp.urls",
     "carries ssl_options; use amqp.tls_ca_file"),
    ("dhcpd:\n  x: 1\n", "dhcpd", "unknown section"),
    ("dhcp:\n  mtu: 70000\n", "dhcp.mtu", "between 68 and 65535"),
    ("dhcp:\n  lease_time: 4294967296\n", "dhcp.lease_time", "between 1 and 4294967295"),
    ("dhcp:\n  nameservers: ['2001:db8::1']\n", "dhcp.nameservers", "not an IPv4 address"),
    ("dhcp:\n  routes: ['10.0.0.0/8']\n", "dhcp.routes", "is not 'CIDR GATEWAY'"),
    ("dhcp:\n  dhcp_queue: 65536\n", "dhcp.dhcp_queue", "queue number"),
    ("dhcp:\n  ipv6_mode: dhcpv6\n", "dhcp.ipv6_mode", "must be one of"),
    ("network:\n  routed_mark: 0x534e0001\n", "network.routed_mark", "low 16 bits are 0"),
])
def test_bad_config_is_one_line_naming_key_and_file_exit_2(tmp_path, text, key, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = run_check(path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and key in lines[0] and problem in lines[0]


def test_missing_file_is_one_line_exit_2(tmp_path):
    result = run_check(tmp_path / "nope.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == f"snf-ganeti: error: {tmp_path / 'nope.yaml'}: file not found"


def test_env_variable_names_the_file(tmp_path):
    path = tmp_path / "env.yaml"
    path.write_text("amqp:\n  exchange: fromenv\n")
    result = subprocess.run([sys.executable, "-m", "snf_ganeti.cli", "config", "check"],
                            capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "SNF_GANETI_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr
    assert "exchange: fromenv" in result.stdout


def test_option_beats_environment():
    assert config_mod.config_path("/a", {"SNF_GANETI_CONFIG": "/b"}) == "/a"
    assert config_mod.config_path(None, {"SNF_GANETI_CONFIG": "/b"}) == "/b"
    assert config_mod.config_path(None, {}) == "/etc/snf-ganeti/snf-ganeti.yaml"


def test_check_masks_password(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("amqp:\n  urls: ['amqp://snf:s3cr3t@mq1:5672/', 'amqps://mq2/']\n")
    result = run_check(path)
    assert result.returncode == 0
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "amqp://snf:***@mq1:5672/" in result.stdout


def test_bad_url_error_does_not_leak_password():
    with pytest.raises(ConfigError) as err:
        config_mod.parse("amqp:\n  urls: ['http://u:pw@h/']\n", "/x.yaml")
    assert "pw" not in str(err.value) and "u:***@h" in str(err.value)


def test_defaults_and_derived_queue_dir():
    config = config_mod.parse("")
    assert config.amqp.exchange == "ganeti"
    assert config.amqp.spool_dir == "/var/spool/snf-ganeti"
    assert config.ganeti.job_queue_dir == "/var/lib/ganeti/queue"
    config = config_mod.parse("ganeti:\n  data_dir: /srv/g\n")
    assert config.ganeti.job_queue_dir == "/srv/g/queue"


def test_integers_are_accepted_for_numbers_and_lists_become_tuples():
    config = config_mod.parse("amqp:\n  connect_timeout: 3\n  urls: ['amqp://a/', 'amqp://b/']\n")
    assert config.amqp.connect_timeout == 3.0
    assert config.amqp.urls == ("amqp://a/", "amqp://b/")


def test_invalid_yaml_names_line():
    with pytest.raises(ConfigError, match="not valid YAML at line 2"):
        config_mod.parse("amqp:\n  urls: ]\n", "/x.yaml")


def test_shipped_config_is_the_generated_defaults():
    with open(os.path.join(ROOT, "etc", "snf-ganeti.yaml")) as shipped:
        assert shipped.read() == config_mod.render_defaults()
    assert config_mod.load(os.path.join(ROOT, "etc", "snf-ganeti.yaml")) == config_mod.Config()
