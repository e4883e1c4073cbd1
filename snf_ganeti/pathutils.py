"""Every filesystem path snf-ganeti uses by default, in one place.

Config keys override most of these at run time; tests override the rest by
passing paths explicitly. Nothing else in the package hard-codes a path.
"""

import os

CONFIG_FILE = "/etc/snf-ganeti/snf-ganeti.yaml"
CONFIG_ENV = "SNF_GANETI_CONFIG"
SPOOL_DIR = "/var/spool/snf-ganeti"
STATE_DIR = "/var/lib/snf-ganeti"
GANETI_DATA_DIR = "/var/lib/ganeti"
DHCP_BINDINGS_DIR = os.path.join(STATE_DIR, "dhcp")
EVENTD_STATE_DIR = os.path.join(STATE_DIR, "eventd")
IFSCRIPTS_STATE_DIR = os.path.join(STATE_DIR, "nics")
RUN_DIR = "/run/snf-ganeti"
CONFIG_CACHE = os.path.join(RUN_DIR, "config.cache")
DHCP_STATUS_FILE = os.path.join(RUN_DIR, "dhcpd-status.json")
MACHINE_ID = "/etc/machine-id"
# Libraries Debian 12 lacks, shipped privately by the .deb (NetfilterQueue).
VENDOR_PYTHON = "/usr/lib/snf-ganeti/python"
IMAGE_DIR = "/var/lib/snf-image"
OS_WORK_DIR = os.path.join(RUN_DIR, "os")
OS_DEFINITION_DIR = "/usr/share/ganeti/os/snf-image"
MBR_BOOT_CODE = "/usr/lib/syslinux/mbr/mbr.bin"
SNF_GANETI_BIN = "/usr/bin/snf-ganeti"


def ganeti_queue_dir(data_dir):
    return os.path.join(data_dir, "queue")


def ssconf_file(data_dir, key):
    return os.path.join(data_dir, f"ssconf_{key}")


def ganeti_config_data(data_dir):
    return os.path.join(data_dir, "config.data")

RT_TABLES = "/etc/iproute2/rt_tables"
IP = "/bin/ip"  # iproute2's
PROC_SYS_NET = "/proc/sys/net"


def listdir(path):
    """The names in directory ``path``; none when it does not exist (yet, or any more)."""
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
