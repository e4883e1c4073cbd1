"""OS parameters and `snf-ganeti os verify`: each missing or invalid case its own message and
exit status."""

import base64
import json
import os
import subprocess
import sys

import pytest

from snf_ganeti.errors import (ConflictingOSParameters, EnvVarError, InvalidOSParameter,
                               MissingOSParameter)
from snf_ganeti.osdefinition import params
from tests.support.procs import ROOT

pytestmark = pytest.mark.unit
GOOD = {"img_id": "debian.img", "img_format": "diskdump"}


def verify(**osp):
    env = {"PATH": "/sbin:/bin:/usr/sbin:/usr/bin", "PYTHONPATH": ROOT, "OS_API_VERSION": "20",
           "OS_NAME": "snf-image", "OS_VARIANT": "default", "DEBUG_LEVEL": "0",
           "SNF_GANETI_CONFIG": "/nonexistent-unused.yaml"}
    env.update({k: v for k, v in osp.items() if k.isupper()})
    env.update({f"OSP_{k.upper()}": v for k, v in osp.items() if not k.isupper()})
    proc = subprocess.run([sys.executable, "-m", "snf_ganeti.cli", "os", "verify",
                           "parameters"], env=env, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stderr.strip()


def test_verify_accepts_good_parameters():
    assert verify(**GOOD) == (0, "")


def test_verify_skips_checks_with_config_url():
    assert verify(config_url="http://example.test/params")[0] == 0


@pytest.mark.parametrize("missing", ["img_id", "img_format"])
def test_verify_missing_parameter(missing):
    status, text = verify(**{k: v for k, v in GOOD.items() if k != missing})
    assert status == 3
    assert text == f"snf-ganeti: error: OS parameter {missing}: is missing or empty"


def test_verify_empty_img_id():
    assert verify(**{**GOOD, "img_id": ""})[0] == 3


CASES = {
    "img_format": ({"img_format": "vmdk"}, "OS parameter img_format: 'vmdk' is not one of"),
    "img_properties": ({"img_properties": "{oops"}, "OS parameter img_properties: is not valid JSON"),
    "img_properties_type": ({"img_properties": "[]"}, "OS parameter img_properties: must be a JSON object"),
    "inst_properties": ({"inst_properties": "nope"}, "OS parameter inst_properties: is not valid JSON"),
    "img_personality": ({"img_personality": "{"}, "OS parameter img_personality: is not valid JSON"),
    "img_personality_type": ({"img_personality": "{}"}, "OS parameter img_personality: must be a JSON array"),
    "personality_path": ({"img_personality": '[{"path": "rel"}]'}, "needs an absolute 'path'"),
    "personality_base64": ({"img_personality": '[{"path": "/a", "contents": "%%%"}]'},
                           "(/a): 'contents' is not base64"),
    "personality_mode": ({"img_personality": '[{"path": "/a", "mode": "0644"}]'},
                         "(/a): 'mode' must be an integer"),
    "img_passwd_hash": ({"img_passwd_hash": "plain"}, "OS parameter img_passwd_hash: is not a crypt"),
    "os_product_key": ({"os_product_key": "ABC"}, "OS parameter os_product_key: must be XXXXX"),
    "os_answer_file": ({"os_answer_file": "gopher://x"}, "OS parameter os_answer_file: must be"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_verify_invalid_parameter(case):
    extra, message = CASES[case]
    status, text = verify(**{**GOOD, **extra})
    assert status == 4, text
    assert message in text and text.count("\n") == 0


def test_verify_conflicting_passwords():
    status, text = verify(**GOOD, img_passwd="a", img_passwd_hash="$6$s$h")
    assert status == 5 and "conflicts with img_passwd_hash" in text


def test_verify_wrong_api_version():
    status, text = verify(**GOOD, OS_API_VERSION="15")
    assert status == 2 and "OS_API_VERSION" in text


def test_verify_unknown_variant():
    status, text = verify(**GOOD, OS_VARIANT="fancy")
    assert status == 4 and "'fancy' is not one of default" in text


def test_properties_merge_upper_cased_with_instance_overrides():
    parsed = params.parse({**GOOD, "img_properties": '{"osfamily": "linux", "swap": 2}',
                           "inst_properties": '{"OSFamily": "windows"}'})
    assert parsed.prop("OSFAMILY") == "windows" and parsed.prop("swap") == "2"


def test_personality_defaults():
    text = json.dumps([{"path": "/etc/motd", "contents": base64.b64encode(b"hi").decode()}])
    (item,) = params.parse({**GOOD, "img_personality": text}).personality
    assert (item.contents, item.owner, item.group, item.mode) == (b"hi", "root", "root", 0o440)


def test_instance_environment():
    env = {"INSTANCE_NAME": "snf-42", "HYPERVISOR": "kvm", "DISK_COUNT": "1",
           "DISK_0_PATH": "/dev/x", "DISK_0_SIZE": "1024", "NIC_COUNT": "1",
           "NIC_0_MAC": "aa:00:00:00:00:01", "NIC_0_IP": "192.0.2.5",
           "NIC_0_NETWORK_SUBNET": "192.0.2.0/24", "NIC_0_NETWORK_TAGS": "dhcp other"}
    inst = params.instance(env)
    assert inst.disks == (params.Disk(0, "/dev/x", 1024),)
    assert inst.nics[0].tags == ("dhcp", "other") and inst.nics[0].ip == "192.0.2.5"


@pytest.mark.parametrize("missing", ["INSTANCE_NAME", "DISK_COUNT", "DISK_0_PATH"])
def test_instance_environment_missing(missing):
    env = {"INSTANCE_NAME": "snf-42", "DISK_COUNT": "1", "DISK_0_PATH": "/dev/x"}
    del env[missing]
    with pytest.raises(EnvVarError, match=missing):
        params.instance(env)


def test_error_classes_have_distinct_statuses():
    statuses = {cls.exit_status for cls in (MissingOSParameter, InvalidOSParameter,
                                            ConflictingOSParameters)}
    assert len(statuses) == 3


def test_parse_bool_follows_snf_image():
    assert [params.parse_bool(v) for v in (None, "", "no", "OFF", "0", "yes", "1", "x")] == \
        [False, False, False, False, False, True, True, True]


def test_no_environment_leaks_into_verify():
    assert "OSP_IMG_ID" not in os.environ  # the cases above set it only for the subprocess


def test_the_root_password_is_not_in_the_parameters_repr():
    checked = params.OSParams(img_id="debian", img_format="diskdump", passwd="s3cret-pw",
                              passwd_hash="$6$salt$hash")
    assert "s3cret-pw" not in repr(checked) and "$6$salt$hash" not in repr(checked)
