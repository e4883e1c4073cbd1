"""Parse what Ganeti gives an OS script (OS parameters, instance, disks, NICs) into data.

Everything that can be checked without touching the image or the disk is
checked here, before anything is written (spec §1.6, §2.3): a bad parameter
fails the script with a line naming it and leaves the disk untouched.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

from snf_ganeti.errors import (ConflictingOSParameters, EnvVarError, InvalidOSParameter,
                               MissingOSParameter)

API_VERSION = "20"
FORMATS = ("diskdump", "extdump", "ntfsdump", "qcow2")
# snf-image's parameters.list (spec §2.1), in its order, with its descriptions.
PARAMETERS = (
    ("img_id", "The id of the image to be installed (a file in the image store, an http(s) "
               "URL, or null)"),
    ("img_format", "The image format: diskdump, extdump, ntfsdump or qcow2"),
    ("img_passwd", "The root password which will be injected into the image"),
    ("img_passwd_hash", "The hashed root password which will be injected into the image"),
    ("img_properties", "Image properties (a JSON object)"),
    ("img_personality", "Files to be injected into the image (a JSON array)"),
    ("inst_properties", "Instance-specific image properties (a JSON object) overriding "
                        "img_properties"),
    ("auth_keys", "SSH public keys to be added to the users' authorized keys"),
    ("os_product_key", "The product key for the OS (Windows; not supported here)"),
    ("os_answer_file", "URL of an answer file (Windows; not supported here)"),
    ("config_url", "URL of a JSON object with the parameters above"),
    ("cloud_userdata", "cloud-init user data, base64-encoded (not supported here)"),
)
PARAMETER_NAMES = tuple(name for name, _ in PARAMETERS)
_PRODUCT_KEY = re.compile(r"^[A-Za-z0-9]{5}(-[A-Za-z0-9]{5}){4}$")
_ANSWER_URL = re.compile(r"^(https?|ftps?|file)://.+")
DEFAULT_MODE = 0o440


@dataclass(frozen=True)
class PersonalityFile:
    """A file to put in the image (an ``img_personality`` entry): path, contents, owner, mode."""

    path: str
    contents: bytes
    owner: str = "root"
    group: str = "root"
    mode: int = DEFAULT_MODE


@dataclass(frozen=True)
class OSParams:
    """The checked OS parameters: the image, the root password, the merged image properties, the
    personality files and the SSH keys."""

    img_id: str
    img_format: str
    # Not in the repr: a debug log or a test failure must not show the root password.
    passwd: str = field(default=None, repr=False)
    passwd_hash: str = field(default=None, repr=False)
    properties: tuple = ()          # ((UPPER_KEY, value string), ...) merged, inst overrides img
    personality: tuple = ()         # PersonalityFile, ...
    auth_keys: str = None

    def prop(self, key, default=None):
        return dict(self.properties).get(key.upper(), default)

    @property
    def all_tasks_excluded(self):
        return parse_bool(self.prop("EXCLUDE_ALL_TASKS"))


ALL_TASKS_EXCLUDED = ("EXCLUDE_ALL_TASKS is set. All configuration tasks were prevented from "
                      "running.")


@dataclass(frozen=True)
class Disk:
    """One of the instance's disks as the OS script is given it: ``DISK_<i>_PATH`` and ``_SIZE``."""

    index: int
    path: str
    size_mib: int = None


@dataclass(frozen=True)
class Nic:
    """One of the instance's NICs as the OS script is given it (``NIC_<i>_*``): MAC, IP, network."""

    index: int
    mac: str = None
    ip: str = None
    subnet: str = None
    gateway: str = None
    subnet6: str = None
    gateway6: str = None
    tags: tuple = ()


@dataclass(frozen=True)
class Instance:
    """The instance an OS script works on: name, hypervisor, disks, NICs, and whether it is a
    reinstall."""

    name: str
    hypervisor: str
    disks: tuple
    nics: tuple = ()
    reinstall: bool = False


def raw_params(environ):
    """The OS parameters as Ganeti passed them: ``{name: value}`` for those set (even empty)."""
    return {name: environ[f"OSP_{name.upper()}"] for name in PARAMETER_NAMES
            if f"OSP_{name.upper()}" in environ}


def check_api(environ):
    version = environ.get("OS_API_VERSION", "")
    if version != API_VERSION:
        raise EnvVarError("OS_API_VERSION", f"{version!r} is not supported; only API 20 is")


def verify(raw):
    """What ``verify parameters`` checks: every parameter that is given is well-formed."""
    if raw.get("config_url"):
        return None  # the real values arrive at create time
    return parse(raw)


def parse(raw):
    """Typed OS parameters from ``{name: value}``; raises OSParameterError naming the first bad one."""
    for name in ("img_id", "img_format"):
        if not raw.get(name):
            raise MissingOSParameter(name, "is missing or empty")
    if raw["img_format"] not in FORMATS:
        raise InvalidOSParameter("img_format", f"{raw['img_format']!r} is not one of "
                                               f"{', '.join(FORMATS)}")
    if "img_passwd" in raw and "img_passwd_hash" in raw:
        raise ConflictingOSParameters("img_passwd", "conflicts with img_passwd_hash; give one")
    if raw.get("img_passwd_hash") and not raw["img_passwd_hash"].startswith("$"):
        raise InvalidOSParameter("img_passwd_hash", "is not a crypt(3) hash ($id$salt$hash)")
    if raw.get("os_product_key") and not _PRODUCT_KEY.match(raw["os_product_key"]):
        raise InvalidOSParameter("os_product_key", "must be XXXXX-XXXXX-XXXXX-XXXXX-XXXXX")
    if raw.get("os_answer_file") and not _ANSWER_URL.match(raw["os_answer_file"]):
        raise InvalidOSParameter("os_answer_file", "must be an http(s), ftp(s) or file URL")
    properties = {**_properties(raw, "img_properties"), **_properties(raw, "inst_properties")}
    return OSParams(
        img_id=raw["img_id"], img_format=raw["img_format"],
        passwd=raw.get("img_passwd") or None, passwd_hash=raw.get("img_passwd_hash") or None,
        properties=tuple(sorted(properties.items())),
        personality=_personality(raw.get("img_personality")),
        auth_keys=raw.get("auth_keys") or None)


def _properties(raw, name):
    text = raw.get(name)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as err:
        raise InvalidOSParameter(name, f"is not valid JSON ({err.msg} at {err.pos})") from None
    if not isinstance(value, dict):
        raise InvalidOSParameter(name, "must be a JSON object")
    # snf-image upper-cases keys and stringifies values (decode-properties.py).
    return {str(k).upper(): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def _personality(text):
    if not text:
        return ()
    try:
        value = json.loads(text)
    except ValueError as err:
        raise InvalidOSParameter("img_personality",
                                 f"is not valid JSON ({err.msg} at {err.pos})") from None
    if not isinstance(value, list):
        raise InvalidOSParameter("img_personality", "must be a JSON array of files")
    return tuple(_personality_file(i, item) for i, item in enumerate(value))


def _personality_file(index, item):
    where = f"file [{index}]"
    if not isinstance(item, dict):
        raise InvalidOSParameter("img_personality", f"{where} must be an object")
    path = item.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidOSParameter("img_personality", f"{where} needs an absolute 'path'")
    try:
        contents = base64.b64decode(item.get("contents", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise InvalidOSParameter("img_personality",
                                 f"{where} ({path}): 'contents' is not base64") from None
    mode = item.get("mode", DEFAULT_MODE)
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
        raise InvalidOSParameter("img_personality",
                                 f"{where} ({path}): 'mode' must be an integer 0..4095")
    owner, group = item.get("owner") or "root", item.get("group") or "root"
    if not isinstance(owner, str) or not isinstance(group, str):
        raise InvalidOSParameter("img_personality", f"{where} ({path}): owner/group must be names")
    return PersonalityFile(path, contents, owner, group, mode)


def instance(environ):
    """The instance an instance script (create, import, export) works on."""
    def need(name):
        value = environ.get(name)
        if not value:
            raise EnvVarError(name, "missing from the OS script's environment")
        return value
    name = need("INSTANCE_NAME")
    count = _count(environ, "DISK_COUNT", need("DISK_COUNT"))
    if count < 1:
        raise EnvVarError("DISK_COUNT", "the instance has no disk; at least one is needed")
    disks = tuple(_disk(environ, i) for i in range(count))
    nics = tuple(_nic(environ, i) for i in range(_count(environ, "NIC_COUNT",
                                                       environ.get("NIC_COUNT", "0"))))
    return Instance(name=name, hypervisor=environ.get("HYPERVISOR", ""), disks=disks, nics=nics,
                    reinstall=environ.get("INSTANCE_REINSTALL") == "1")


def _count(environ, name, text):
    try:
        return int(text)
    except ValueError:
        raise EnvVarError(name, f"{text!r} is not a number") from None


def _disk(environ, i):
    path = environ.get(f"DISK_{i}_PATH")
    if not path:
        raise EnvVarError(f"DISK_{i}_PATH", "missing (userspace-only disks are not supported)")
    size = environ.get(f"DISK_{i}_SIZE")
    return Disk(i, path, _count(environ, f"DISK_{i}_SIZE", size) if size else None)


def _nic(environ, i):
    def get(key):
        return environ.get(f"NIC_{i}_{key}") or None
    return Nic(index=i, mac=get("MAC"), ip=get("IP"), subnet=get("NETWORK_SUBNET"),
               gateway=get("NETWORK_GATEWAY"), subnet6=get("NETWORK_SUBNET6"),
               gateway6=get("NETWORK_GATEWAY6"),
               tags=tuple((get("NETWORK_TAGS") or "").split()))


def parse_bool(value):
    """snf-image's yes/no (check_yes_no): unset or a 'no' word is False, anything else True."""
    if value is None:
        return False
    return str(value).strip().lower() not in ("", "no", "false", "off", "0", "unset")
