"""The image copy on real filesystems: cloned where image and disk share an XFS or btrfs
filesystem, through O_DIRECT where the disk's filesystem allows it (the node's page cache holds
none of the image afterwards), buffered where it does not."""

import io
import os
import subprocess
from pathlib import Path

import pytest

from snf_ganeti.osdefinition import copy as copy_mod
from snf_ganeti.osdefinition import diskio, diskwrite
from tests.support import images

pytestmark = pytest.mark.integration
MIB = 1 << 20


def cached_bytes(path):
    """Bytes of ``path`` in the page cache, by util-linux's fincore (mincore(2))."""
    out = subprocess.run(["fincore", "--bytes", "--raw", "--noheadings", "--output", "RES",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.strip())


def sparse_image(path):
    """8 MiB: random data, a hole, allocated zeros, a tail of random data not 4 KiB long."""
    data = os.urandom(3 * MIB) + bytes(2 * MIB) + bytes(2 * MIB) + os.urandom(MIB - 1000)
    with open(path, "wb") as stream:
        stream.write(data[:3 * MIB])
        stream.seek(5 * MIB)
        stream.write(data[5 * MIB:])
    return data


def fresh_disk(path, size=16 * MIB):
    with open(path, "wb") as stream:
        stream.truncate(size)


def copy_file(image, disk, size):
    fd = os.open(disk, os.O_RDWR)
    try:
        with open(image, "rb") as stream:
            copy_mod.Copy(fd, b"", size, lambda *a: None, 1.0).run(stream, str(image))
    finally:
        os.close(fd)


@pytest.fixture
def direct_io(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        probe = os.open(tmp_path / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT)
    except OSError:
        pytest.skip(f"{tmp_path}'s filesystem takes no O_DIRECT")
    finally:
        os.close(fd)
    os.close(probe)
    os.unlink(tmp_path / "probe")


def test_local_image_goes_to_the_disk_around_the_page_cache(tmp_path, direct_io):
    image, disk = tmp_path / "image", tmp_path / "disk"
    data = sparse_image(image)
    fresh_disk(disk)
    copy_file(image, disk, len(data))
    # Only the last unaligned piece (under 4 KiB) may go through the cache.
    assert cached_bytes(disk) <= 4096
    assert disk.read_bytes()[:len(data)] == data
    assert os.stat(disk).st_blocks * 512 < 5 * MIB  # zeros and hole stayed holes


def test_header_and_image_land_where_the_layout_says(tmp_path, direct_io):
    # As an extdump deploy: a 1 MiB header from memory (bytes: not page-aligned, so
    # written buffered), then the image from its file.
    image, disk = tmp_path / "image", tmp_path / "disk"
    data = sparse_image(image)
    header = os.urandom(MIB)
    fresh_disk(disk)
    fd = os.open(disk, os.O_RDWR)
    try:
        with open(image, "rb") as stream:
            copy_mod.Copy(fd, header, len(data), lambda *a: None, 1.0).run(stream, str(image))
    finally:
        os.close(fd)
    assert cached_bytes(disk) <= MIB + 4096
    content = disk.read_bytes()
    assert content[:MIB] == header and content[MIB:MIB + len(data)] == data


def test_streamed_import_goes_around_the_page_cache(tmp_path, direct_io):
    disk = tmp_path / "disk"
    data = os.urandom(6 * MIB)
    fresh_disk(disk)
    diskio.import_({"OS_API_VERSION": "20", "IMPORT_DEVICE": str(disk)}, io.BytesIO(data))
    assert cached_bytes(disk) == 0
    assert disk.read_bytes()[:len(data)] == data


@pytest.fixture
def tmpfs(tmp_path):
    mountpoint = tmp_path / "tmpfs"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "snf-test", str(mountpoint)],
                   check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_disk_on_tmpfs_keeps_content_and_holes(tmp_path, tmpfs):
    # tmpfs takes O_DIRECT only since Linux 6.6; before that this is the buffered path.
    image, disk = tmp_path / "image", tmpfs / "disk"
    data = sparse_image(image)
    fresh_disk(disk)
    copy_file(image, disk, len(data))
    assert disk.read_bytes()[:len(data)] == data
    assert os.stat(disk).st_blocks * 512 < 5 * MIB


def test_buffered_copy_when_direct_io_is_unavailable(tmp_path):
    image, disk = tmp_path / "image", tmp_path / "disk"
    data = sparse_image(image)
    fresh_disk(disk)
    fd = os.open(disk, os.O_RDWR)
    try:
        with open(image, "rb") as stream, diskwrite.Writer(fd, stream.fileno(), direct=False) as w:
            view = memoryview(stream.read())
            copy_mod.write_runs(w, 0, view, copy_mod.runs(view), 0)
            w.finish()
    finally:
        os.close(fd)
    assert cached_bytes(disk) > 3 * MIB  # what the direct path avoids
    assert disk.read_bytes()[:len(data)] == data
    assert os.stat(disk).st_blocks * 512 < 5 * MIB


@pytest.fixture(params=["xfs", "btrfs"])
def reflink_fs(request, tmp_path):
    backing = tmp_path / f"{request.param}.fs"
    with open(backing, "wb") as stream:
        stream.truncate(320 * MIB)
    subprocess.run([f"mkfs.{request.param}", "-q", "-f", str(backing)], check=True)
    with images.mounted_file(str(backing)) as mountpoint:
        yield Path(mountpoint)


def test_image_on_the_disks_filesystem_is_cloned_not_copied(reflink_fs):
    image, disk = reflink_fs / "image", reflink_fs / "disk"
    data = sparse_image(image)
    fresh_disk(disk)
    copy_file(image, disk, len(data))
    assert disk.read_bytes()[:len(data)] == data
    extents = subprocess.run(["filefrag", "-v", str(disk)], check=True, capture_output=True,
                             text=True).stdout
    shared = [line for line in extents.splitlines() if "shared" in line]
    assert shared, extents  # the image's data extents, now the disk's too
    assert os.stat(disk).st_blocks * 512 < 5 * MIB


def test_image_on_another_filesystem_behind_an_unaligned_header(tmp_path, tmpfs):
    # No clone across filesystems, and the 512-byte header puts every image offset off
    # alignment: all of it goes the buffered way (copy_file_range, else pwrite).
    image, disk = tmpfs / "image", tmp_path / "disk"
    data = sparse_image(image)
    fresh_disk(disk)
    fd = os.open(disk, os.O_RDWR)
    try:
        with open(image, "rb") as stream:
            copy_mod.Copy(fd, b"H" * 512, len(data), lambda *a: None, 1.0).run(stream,
                                                                                str(image))
    finally:
        os.close(fd)
    assert disk.read_bytes()[:512 + len(data)] == b"H" * 512 + data
