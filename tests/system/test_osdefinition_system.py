"""The snf-image OS on the real Ganeti cluster: gnt-instance add deploys and customizes an image,
the frontend's queues see ganeti-create-progress from 0 to 100 and the op-status success, and a
corrupt image fails the job with our message in Ganeti's error."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from snf_ganeti import messages
from tests.support.procs import ROOT
from tests.system.test_eventd_system import eventd, feed  # noqa: F401 (fixtures reused)

pytestmark = pytest.mark.system
OS_DIR = Path("/srv/ganeti/os/snf-image")
PASSWORD = "sys-Pa55"


@pytest.fixture
def snf_image_os(ganeti_cluster, tmp_path, amqp_config):
    """The OS definition installed into the cluster's OS path, running this tree; removed after."""
    assert not OS_DIR.exists(), f"{OS_DIR} exists: another snf-image OS is installed"
    images = tmp_path / "images"
    images.mkdir()
    config = tmp_path / "os.yaml"
    config.write_text(yaml.safe_dump({
        "amqp": {**amqp_config.__dict__, "urls": list(amqp_config.urls)},
        "osdefinition": {"image_dir": str(images), "work_dir": str(tmp_path / "work"),
                         "progress_interval": 0.05}}))
    from snf_ganeti.osdefinition import definition
    definition.install(str(OS_DIR), (sys.executable, "-m", "snf_ganeti.cli"),
                       (("PYTHONPATH", ROOT), ("SNF_GANETI_CONFIG", str(config))))
    try:
        yield images
    finally:
        shutil.rmtree(OS_DIR)


def add(cluster, name, osp, check=True):
    option = ",".join(f"{k}={v.replace(',', chr(92) + ',')}" for k, v in osp.items())
    return cluster.gnt("instance", "add", "-t", "file", "--disk", "0:size=128M",
                       "-o", "snf-image+default", "-O", option, "-H", "fake",
                       "-B", "memory=128M", "-n", cluster.node, "--no-name-check",
                       "--no-ip-check", "--no-start", name, check=check, timeout=600)


def test_gnt_os_diagnose_lists_the_os(ganeti_cluster, snf_image_os):
    out = ganeti_cluster.gnt("os", "diagnose").stdout
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("OS: snf-image "))
    assert "[global status: valid]" in lines[start]
    block = "\n".join(lines[start + 1:start + 3])
    assert "[API versions: 20]" in block and "[variants: default]" in block, out
    assert "[trusted]" in block, out


def test_instance_add_deploys_with_progress_and_op_status(
        ganeti_cluster, ganeti_instance_name, snf_image_os, os_images, eventd, feed, inspect):
    image = os_images.get()
    shutil.copy(image, snf_image_os / "debian.img")
    props = json.dumps({"OSFAMILY": "linux", "ROOT_PARTITION": "1", "USERS": "root"})
    add(ganeti_cluster, ganeti_instance_name, {"img_id": "debian.img",
                                               "img_format": "diskdump",
                                               "img_passwd": PASSWORD, "img_properties": props})
    got = feed.wait(lambda got: any(
        m.queue == "op" and m.body.get("operation") == "OP_INSTANCE_CREATE"
        and m.body.get("status") == "success" for m in got)
        and any(m.body.get("messages") == ["Image customization finished successfully."]
                for m in got if m.queue == "progress"), timeout=120)
    progress = [m for m in got if m.queue == "progress"]
    assert progress, "no ganeti-create-progress message"
    for m in progress:
        messages.validate(m.body)
        assert m.body["instance"] == ganeti_instance_name
        assert m.routing_key == "ganeti.snf.event.progress"
    copies = [m.body["progress"] for m in progress if m.body["type"] == "image-copy-progress"]
    assert copies[0] == 0.0 and copies[-1] == 100.0 and copies == sorted(copies)
    assert any(m.body.get("status") == "success" and m.body["instance"] == ganeti_instance_name
               for m in got if m.queue == "op")
    disk = ganeti_cluster.gnt("instance", "info", ganeti_instance_name).stdout
    path = next(w for w in disk.split() if w.startswith("/srv/ganeti/file-storage")
                and ".disk0" in w)
    root = inspect(path.rstrip(",")).mount()
    assert open(f"{root}/etc/hostname").read() == ganeti_instance_name + "\n"


def test_corrupt_image_fails_the_job_with_our_message(ganeti_cluster, ganeti_instance_name,
                                                      snf_image_os, os_images):
    garbage = snf_image_os / "corrupt.img"
    garbage.write_bytes(os.urandom(4 << 20))
    proc = add(ganeti_cluster, ganeti_instance_name, {"img_id": "corrupt.img",
                                                      "img_format": "diskdump"}, check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "OS create script failed" in output
    assert "unable to read the partition table of the image; it seems corrupted" in output


def test_verify_rejects_a_bad_parameter(ganeti_cluster, ganeti_instance_name, snf_image_os):
    proc = add(ganeti_cluster, ganeti_instance_name, {"img_id": "x", "img_format": "vmdk"},
               check=False)
    assert proc.returncode != 0
    assert "OS parameter img_format: 'vmdk' is not one of" in proc.stdout + proc.stderr
