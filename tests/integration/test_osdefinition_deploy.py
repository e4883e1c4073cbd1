"""`snf-ganeti os create` on loop devices: small busybox images deployed and customized."""

import base64
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # Debian 12 python3.11 still has it; the hash check needs a real crypt(3)
import json
import os
import re
import stat

import pytest

from tests.support import images

pytestmark = pytest.mark.integration
PASSWORD = "Xy7pQ2-secret"
PROPS = {"OSFAMILY": "linux", "ROOT_PARTITION": "1", "USERS": "root user"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0ZXN0a2V5 test@snf"


def deploy(os_run, image, fmt="diskdump", props=PROPS, nics=(), **osp):
    name = os_run.add_image(image)
    params = {"img_id": name, "img_format": fmt, "img_properties": json.dumps(props), **osp}
    proc = os_run.run("create", params, nics=nics)
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()[-2000:]
    return proc


def messages(proc):
    return [json.loads(line[len("[MONITOR] "):]) for line in proc.stdout.decode().splitlines()
            if line.startswith("[MONITOR] ")]


def assert_grown(view, disk_bytes, fsck=True):
    part = view.table()["partitions"][0]
    assert part["start"] + part["size"] == disk_bytes // 512 - 2048
    if fsck:
        assert view.fsck() == 0


def fs_bytes(root):
    st = os.statvfs(root)
    return st.f_blocks * st.f_frsize


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs"])
def test_diskdump_partition_and_filesystem_grow_to_the_disk(os_run, os_images, inspect, fstype):
    os_run.make_disk(max(images.SIZES[fstype] + 96, 320))  # btrfs grows only to >= 256 MiB
    deploy(os_run, os_images.get("diskdump", fstype))
    view = inspect(os_run.disk)
    assert_grown(view, os.path.getsize(os_run.disk))
    root = view.mount()
    assert fs_bytes(root) > images.SIZES[fstype] << 20  # more than the whole image had
    assert open(f"{root}/etc/hostname").read() == "snf-42\n"


def test_extdump_gets_a_partition_table_and_grows(os_run, os_images, inspect):
    proc = deploy(os_run, os_images.get("extdump", "ext4"), fmt="extdump", props={})
    view = inspect(os_run.disk)
    table = view.table()
    assert table["label"] == "dos" and table["partitions"][0]["start"] == 2048
    assert_grown(view, os.path.getsize(os_run.disk))
    assert fs_bytes(view.mount()) > 100 << 20
    assert "Needed image properties are missing" not in proc.stdout.decode()


def test_qcow2_image_is_converted_and_customized(os_run, os_images, inspect):
    deploy(os_run, os_images.get("qcow2", "ext4"), fmt="qcow2")
    view = inspect(os_run.disk)
    assert_grown(view, os.path.getsize(os_run.disk))
    assert open(f"{view.mount()}/etc/hostname").read() == "snf-42\n"


def test_gpt_diskdump_grows_with_its_backup_header_moved(os_run, os_images, inspect):
    deploy(os_run, os_images.get("diskdump", "ext4", label="gpt"))
    view = inspect(os_run.disk)
    table = view.table()
    assert table["label"] == "gpt"
    assert table["lastlba"] == os.path.getsize(os_run.disk) // 512 - 34
    assert view.fsck() == 0


def test_hostname_and_hosts(os_run, os_images, inspect):
    deploy(os_run, os_images.get())
    root = inspect(os_run.disk).mount()
    assert open(f"{root}/etc/hostname").read() == "snf-42\n"
    hosts = open(f"{root}/etc/hosts").read().splitlines()
    assert hosts == ["127.0.0.1\tlocalhost", "127.0.1.1\tsnf-42"]


def test_password_hash_verifies_for_every_user(os_run, os_images, inspect):
    deploy(os_run, os_images.get(), img_passwd=PASSWORD)
    root = inspect(os_run.disk).mount()
    shadow = dict(line.split(":", 2)[:2] for line in open(f"{root}/etc/shadow").read().split())
    for user in ("root", "user"):
        assert shadow[user].startswith("$6$")
        assert crypt.crypt(PASSWORD, shadow[user]) == shadow[user]
    assert stat.S_IMODE(os.stat(f"{root}/etc/shadow").st_mode) == 0o640


def test_password_hash_parameter_is_written_verbatim(os_run, os_images, inspect):
    hashed = crypt.crypt("other", "$6$abcdefgh$")
    deploy(os_run, os_images.get(), props={**PROPS, "USERS": "user"}, img_passwd_hash=hashed)
    root = inspect(os_run.disk).mount()
    lines = open(f"{root}/etc/shadow").read().split()
    assert f"user:{hashed}:" in "\n".join(lines)
    assert lines[0].startswith("root:*:")


def test_authorized_keys_have_content_modes_and_owners(os_run, os_images, inspect):
    deploy(os_run, os_images.get(), auth_keys=KEY)
    root = inspect(os_run.disk).mount()
    for home, uid in (("root", 0), ("home/user", 1000)):
        keys = f"{root}/{home}/.ssh/authorized_keys"
        assert open(keys).read() == KEY + "\n"
        st, dst = os.stat(keys), os.stat(os.path.dirname(keys))
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, uid, uid)
        assert (stat.S_IMODE(dst.st_mode), dst.st_uid) == (0o700, uid)


def test_personality_files_have_content_modes_and_owners(os_run, os_images, inspect):
    files = [{"path": "/etc/motd", "contents": base64.b64encode(b"hello\n").decode(),
              "mode": 0o644},
             {"path": "/home/user/new/dir/secret", "contents": base64.b64encode(b"s3").decode(),
              "owner": "user", "group": "staff"}]
    deploy(os_run, os_images.get(), img_personality=json.dumps(files))
    root = inspect(os_run.disk).mount()
    assert open(f"{root}/etc/motd").read() == "hello\n"
    assert stat.S_IMODE(os.stat(f"{root}/etc/motd").st_mode) == 0o644
    secret = os.stat(f"{root}/home/user/new/dir/secret")
    assert (stat.S_IMODE(secret.st_mode), secret.st_uid, secret.st_gid) == (0o440, 1000, 50)
    assert open(f"{root}/home/user/new/dir/secret").read() == "s3"
    new_dir = os.stat(f"{root}/home/user/new")
    assert (stat.S_IMODE(new_dir.st_mode), new_dir.st_uid) == (0o750, 1000)


def test_machine_id_is_regenerated(os_run, os_images, inspect):
    deploy(os_run, os_images.get())
    root = inspect(os_run.disk).mount()
    first = open(f"{root}/etc/machine-id").read().strip()
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != images.OLD_MACHINE_ID
    assert open(f"{root}/var/lib/dbus/machine-id").read().strip() == first


def test_ssh_host_keys_are_gone(os_run, os_images, inspect):
    deploy(os_run, os_images.get())
    root = inspect(os_run.disk).mount()
    for name in os.listdir(f"{root}/etc/ssh"):
        if name.startswith("ssh_host_"):
            assert open(f"{root}/etc/ssh/{name}").read() != "old", f"{name} was kept"


NIC = {"mac": "aa:00:00:12:34:56", "ip": "192.0.2.10", "network_subnet": "192.0.2.0/24",
       "network_gateway": "192.0.2.1", "network_tags": "static"}
EXPECTED = {
    "ifupdown": ("etc/network/interfaces", ["iface eth0 inet static", "address 192.0.2.10",
                                             "netmask 255.255.255.0", "gateway 192.0.2.1"]),
    "netplan": ("etc/netplan/50-snf-ganeti.yaml", ['macaddress: "aa:00:00:12:34:56"',
                                                   '"192.0.2.10/24"', "via: 192.0.2.1"]),
    "systemd-networkd": ("etc/systemd/network/50-snf-ganeti-eth0.network",
                         ["MACAddress=aa:00:00:12:34:56", "Address=192.0.2.10/24",
                          "Gateway=192.0.2.1"]),
    "NetworkManager": ("etc/NetworkManager/system-connections/snf-ganeti-eth0.nmconnection",
                       ["mac-address=aa:00:00:12:34:56", "method=manual",
                        "address1=192.0.2.10/24,192.0.2.1"]),
}


@pytest.mark.parametrize("stack", sorted(EXPECTED))
def test_network_configuration_for_the_image_stack(os_run, os_images, inspect, stack):
    deploy(os_run, os_images.get(stack=stack), nics=[NIC])
    root = inspect(os_run.disk).mount()
    path, needles = EXPECTED[stack]
    text = open(f"{root}/{path}").read()
    for needle in needles:
        assert needle in text, f"{needle!r} missing from {path}:\n{text}"
    if stack == "NetworkManager":
        assert stat.S_IMODE(os.stat(f"{root}/{path}").st_mode) == 0o600


def test_dhcp_network_tag_gives_dhcp(os_run, os_images, inspect):
    deploy(os_run, os_images.get(), nics=[{**NIC, "network_tags": "dhcp"}])
    text = open(f"{inspect(os_run.disk).mount()}/etc/network/interfaces").read()
    assert "iface eth0 inet dhcp" in text and "static" not in text


def test_excluded_task_does_not_run(os_run, os_images, inspect):
    proc = deploy(os_run, os_images.get(), props={**PROPS, "EXCLUDE_TASK_AssignHostname": "yes"})
    assert open(f"{inspect(os_run.disk).mount()}/etc/hostname").read() == "template\n"
    assert "Task AssignHostname was excluded" in proc.stdout.decode()


def test_exclude_all_tasks_copies_only(os_run, os_images, inspect):
    deploy(os_run, os_images.get(), props={**PROPS, "EXCLUDE_ALL_TASKS": "yes"})
    view = inspect(os_run.disk)
    assert view.table()["partitions"][0]["size"] == images.SIZES["ext4"] << 11
    assert open(f"{view.mount()}/etc/hostname").read() == "template\n"


def test_swap_partition_is_made_and_listed(os_run, os_images, inspect):
    deploy(os_run, os_images.get(), props={**PROPS, "SWAP": "2:16"})
    view = inspect(os_run.disk)
    parts = view.table()["partitions"]
    assert parts[1]["size"] == 16 << 11 and parts[1]["type"] == "82"
    assert parts[1]["start"] + parts[1]["size"] == os.path.getsize(os_run.disk) // 512 - 2048
    assert "none swap sw 0 0" in open(f"{view.mount()}/etc/fstab").read()


def test_sha256_sidecar_is_verified(os_run, os_images, inspect):
    import hashlib
    image = os_images.get()
    name = os_run.add_image(image)
    with open(image, "rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    with open(os.path.join(os_run.image_dir, name + ".sha256"), "w") as stream:
        stream.write(f"{digest}  {name}\n")
    deploy(os_run, image)
    assert inspect(os_run.disk).fsck() == 0


def test_root_partition_is_autodetected(os_run, os_images, inspect):
    proc = deploy(os_run, os_images.get(), props={})
    assert "Detected ROOT_PARTITION: 1" in proc.stdout.decode()


def test_export_then_import_round_trips_the_disk(os_run, os_images, tmp_path):
    deploy(os_run, os_images.get())
    size_file = tmp_path / "size"
    with open(size_file, "w") as size_out:
        env = os_run.environ({}, EXPORT_DEVICE=os_run.disk, EXPORT_INDEX="0",
                             EXP_SIZE_FD=str(size_out.fileno()))
        import subprocess
        import sys
        exported = subprocess.run([sys.executable, "-m", "snf_ganeti.cli", "os", "export"],
                                  env=env, capture_output=True, pass_fds=(size_out.fileno(),))
    assert exported.returncode == 0, exported.stderr
    assert size_file.read_text() == f"{os.path.getsize(os_run.disk)}\n"
    target = tmp_path / "disk1"
    target.write_bytes(b"")
    os.truncate(target, os.path.getsize(os_run.disk))
    imported = os_run.run("import", input=exported.stdout,
                          env=os_run.environ({}, IMPORT_DEVICE=str(target), IMPORT_INDEX="0"))
    assert imported.returncode == 0, imported.stderr
    assert target.read_bytes() == open(os_run.disk, "rb").read()
    assert os.stat(target).st_blocks * 512 < os.path.getsize(target)  # stayed sparse


def test_null_image_customizes_what_the_disk_holds(os_run, os_images, inspect):
    deploy(os_run, os_images.get())
    os_run.name = "snf-43"
    proc = os_run.run("create", {"img_id": "null", "img_format": "diskdump",
                                 "img_properties": json.dumps(PROPS)})
    assert proc.returncode == 0, proc.stderr.decode()
    copies = [m for m in messages(proc) if m["type"] == "image-copy-progress"]
    assert copies[-1]["progress"] == 100.0 and copies[-1]["total"] == 0
    assert open(f"{inspect(os_run.disk).mount()}/etc/hostname").read() == "snf-43\n"


def test_without_fix_partition_table_the_root_still_mounts(os_run, os_images, inspect):
    deploy(os_run, os_images.get(), props={**PROPS, "EXCLUDE_TASK_FixPartitionTable": "yes"})
    view = inspect(os_run.disk)
    assert view.table()["partitions"][0]["size"] == images.SIZES["ext4"] << 11
    assert open(f"{view.mount()}/etc/hostname").read() == "snf-42\n"
