"""`snf-ganeti os create` on bad input: one line naming the cause, image-error, non-zero exit,
and a disk that is either untouched or visibly not a deployed image."""

import contextlib
import http.server
import json
import os
import socket
import threading

import pytest

pytestmark = pytest.mark.integration
PROPS = json.dumps({"OSFAMILY": "linux", "ROOT_PARTITION": "1"})


def fail(os_run, expect_status, **osp):
    params = {"img_format": "diskdump", "img_properties": PROPS, **osp}
    proc = os_run.run("create", {k: v for k, v in params.items() if v is not None})
    assert proc.returncode == expect_status, proc.stderr.decode()
    error_line = [l for l in proc.stderr.decode().splitlines() if "error:" in l]
    assert len(error_line) == 1, proc.stderr.decode()
    return error_line[0], monitor_errors(proc)


def monitor_errors(proc):
    bodies = [json.loads(l[10:]) for l in proc.stdout.decode().splitlines()
              if l.startswith("[MONITOR] ")]
    return [" ".join(b["messages"]) for b in bodies if b["type"] == "image-error"]


def untouched(disk):
    return os.stat(disk).st_blocks == 0


def head_is_zero(disk):
    with open(disk, "rb") as stream:
        return stream.read(1 << 20) == bytes(1 << 20)


def test_missing_img_id(os_run):
    line, errors = fail(os_run, 3, img_id=None)
    assert "img_id" in line and "missing" in line
    assert untouched(os_run.disk)


def test_invalid_img_format(os_run):
    line, _ = fail(os_run, 4, img_id="x", img_format="vmdk")
    assert "img_format" in line and "vmdk" in line


def test_conflicting_passwords(os_run):
    line, _ = fail(os_run, 5, img_id="x", img_passwd="a", img_passwd_hash="$6$x$y")
    assert "img_passwd" in line and "img_passwd_hash" in line


def test_bad_personality_json_touches_nothing(os_run, os_images):
    name = os_run.add_image(os_images.get())
    line, _ = fail(os_run, 4, img_id=name, img_personality="[{not json")
    assert "img_personality" in line and "JSON" in line
    assert untouched(os_run.disk)


def test_image_outside_the_store(os_run):
    line, _ = fail(os_run, 4, img_id="../../../etc/passwd")
    assert "img_id" in line and "outside the image store" in line


def test_missing_image_file(os_run):
    line, errors = fail(os_run, 6, img_id="nosuch.img")
    assert "nosuch.img" in line and "does not exist" in line
    assert errors and "nosuch.img" in errors[0]
    assert untouched(os_run.disk)


def test_image_larger_than_the_disk(os_run, os_images):
    os_run.make_disk(32)
    name = os_run.add_image(os_images.get())
    line, errors = fail(os_run, 7, img_id=name)
    assert "exceeds the size of disk 0" in line and os_run.disk in line
    assert errors and "exceeds" in errors[0]
    assert untouched(os_run.disk)


def test_checksum_mismatch(os_run, os_images):
    name = os_run.add_image(os_images.get())
    props = json.dumps({"OSFAMILY": "linux", "SHA256": "0" * 64})
    line, errors = fail(os_run, 6, img_id=name, img_properties=props)
    assert "checksum mismatch" in line and "0" * 64 in line
    assert errors and "checksum mismatch" in errors[0]
    assert head_is_zero(os_run.disk)


def test_corrupt_image(os_run, tmp_path):
    garbage = tmp_path / "garbage.img"
    garbage.write_bytes(os.urandom(4 << 20))
    name = os_run.add_image(str(garbage))
    line, errors = fail(os_run, 8, img_id=name)
    assert "partition table" in line and "corrupted" in line
    assert errors and "partition table" in errors[0]
    assert head_is_zero(os_run.disk)


def test_unmountable_filesystem(os_run, tmp_path):
    image = tmp_path / "nofs.img"
    image.write_bytes(b"")
    os.truncate(image, 8 << 20)
    import subprocess
    subprocess.run(["sfdisk", "-q", str(image)], input="start=2048, type=83\n", text=True,
                   check=True)
    name = os_run.add_image(str(image))
    line, errors = fail(os_run, 8, img_id=name)
    assert "MountImage" in line and "cannot mount" in line
    assert head_is_zero(os_run.disk)


def test_unknown_user(os_run, os_images):
    name = os_run.add_image(os_images.get())
    props = json.dumps({"OSFAMILY": "linux", "ROOT_PARTITION": "1", "USERS": "admin"})
    line, errors = fail(os_run, 8, img_id=name, img_properties=props, img_passwd="pw")
    assert "ChangePassword" in line and "`admin' does not exist" in line
    assert errors and "admin" in errors[0]
    assert head_is_zero(os_run.disk)


def test_unknown_personality_owner(os_run, os_images):
    name = os_run.add_image(os_images.get())
    files = json.dumps([{"path": "/etc/x", "contents": "", "owner": "ghost"}])
    line, _ = fail(os_run, 8, img_id=name, img_personality=files)
    assert "/etc/x" in line and "`ghost' does not exist" in line


# -- http(s) sources ---------------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        path = os.path.join(self.directory, self.path[len("/short/"):])
        if self.path.startswith("/short/") and os.path.exists(path):
            # announces the whole file, sends half
            size = os.path.getsize(path)
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(path, "rb") as stream:
                self.wfile.write(stream.read(size // 2))
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_images(os_run):
    handler = lambda *a, **kw: _Handler(*a, directory=os_run.image_dir, **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_image_is_deployed(os_run, os_images, http_images, inspect):
    name = os_run.add_image(os_images.get())
    proc = os_run.run("create", {"img_id": f"{http_images}/{name}", "img_format": "diskdump",
                                 "img_properties": PROPS})
    assert proc.returncode == 0, proc.stderr.decode()
    assert inspect(os_run.disk).fsck() == 0


def test_http_404(os_run, http_images):
    line, errors = fail(os_run, 6, img_id=f"{http_images}/nosuch.img")
    assert "404" in line and "nosuch.img" in line
    assert errors and "404" in errors[0]
    assert untouched(os_run.disk)


def test_http_unreachable(os_run):
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    line, _ = fail(os_run, 6, img_id=f"http://127.0.0.1:{port}/x.img")
    assert "unreachable" in line and f"127.0.0.1:{port}" in line


def test_truncated_http_image(os_run, os_images, http_images):
    name = os_run.add_image(os_images.get())
    line, errors = fail(os_run, 6, img_id=f"{http_images}/short/{name}")
    assert "truncated" in line
    assert errors and "truncated" in errors[0]
    assert head_is_zero(os_run.disk)


def test_config_url_supplies_the_parameters(os_run, os_images, http_images, inspect):
    name = os_run.add_image(os_images.get())
    with open(os.path.join(os_run.image_dir, "params.json"), "w") as stream:
        json.dump({"img_id": name, "img_format": "diskdump", "img_properties": PROPS,
                   "img_passwd": "pw"}, stream)
    proc = os_run.run("create", {"config_url": f"{http_images}/params.json"})
    assert proc.returncode == 0, proc.stderr.decode()
    shadow = open(f"{inspect(os_run.disk).mount()}/etc/shadow").read()
    assert shadow.startswith("root:$6$")


def test_config_url_404(os_run, http_images):
    line, _ = fail(os_run, 4, img_id=None, img_format=None,
                   config_url=f"{http_images}/nosuch.json")
    assert "config_url" in line and "404" in line
    assert untouched(os_run.disk)
