"""Pure parts of the OS definition: formats, sources, network plans, safe paths, copy, docs."""

import errno
import hashlib
import os
import struct

import pytest

from snf_ganeti.errors import CustomizationError, DiskError, ImageError, InvalidOSParameter
from snf_ganeti.osdefinition import copy as copy_mod
from snf_ganeti.osdefinition import diskwrite
from snf_ganeti.osdefinition import customize, definition, formats, guest, network, params
from snf_ganeti.osdefinition import sources

pytestmark = pytest.mark.unit
DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "osdefinition.md")


def test_extdump_header_has_one_partition_spanning_the_image():
    layout = formats.layout("extdump", 24 << 20, b"\xfa" * 440)
    header = layout.header
    assert len(header) == 1 << 20 and header[510:512] == b"\x55\xaa" and header[0] == 0xFA
    boot, ptype, start, sectors = struct.unpack("<B3xB3xII", header[446:462])
    assert (boot, ptype, start, sectors) == (0x80, 0x83, 2048, (24 << 20) // 512)
    assert header[462:510] == bytes(48)
    assert layout.total == (25 << 20)
    assert dict(layout.properties) == {"OSFAMILY": "linux", "ROOT_PARTITION": "1"}


def test_ntfsdump_partition_type():
    assert formats.layout("ntfsdump", 1 << 20).header[450] == 0x07


def test_diskdump_has_no_header():
    assert formats.layout("diskdump", 12345) == formats.Layout(b"", 12345, ())


def test_fsdump_size_must_be_whole_sectors():
    with pytest.raises(ImageError, match="multiple of 512"):
        formats.layout("extdump", 1000)


@pytest.mark.parametrize("img_id,kind", [("null", "null"), ("http://h/x", "http"),
                                         ("https://h/x", "http"), ("a.img", "local"),
                                         ("local://a.img", "local"), ("file://a.img", "local")])
def test_sources_by_prefix(tmp_path, img_id, kind):
    assert sources.resolve(img_id, str(tmp_path)).kind == kind


@pytest.mark.parametrize("img_id", ["../x", "local://../../etc/shadow", "/etc/passwd/..", "."])
def test_local_source_stays_in_the_store(tmp_path, img_id):
    with pytest.raises(InvalidOSParameter, match="outside the image store"):
        sources.resolve(img_id, str(tmp_path))


def test_unknown_scheme(tmp_path):
    with pytest.raises(InvalidOSParameter, match="unsupported source"):
        sources.resolve("pithos://a/b/c", str(tmp_path))


def test_local_name_with_format_suffix(tmp_path):
    (tmp_path / "deb.diskdump").write_bytes(b"x")
    assert sources.resolve("deb", str(tmp_path), "diskdump").location.endswith("deb.diskdump")


def test_bad_sidecar(tmp_path):
    (tmp_path / "a.img").write_bytes(b"x")
    (tmp_path / "a.img.sha256").write_text("nothex  a.img\n")
    with pytest.raises(ImageError, match="a.img.sha256"):
        sources.open_image(sources.resolve("a.img", str(tmp_path)))


SETTINGS = customize.NetworkSettings()


def nic(**kw):
    return params.Nic(index=kw.pop("index", 0), **kw)


def test_static_ipv4_from_the_network():
    (p,) = network.plan([nic(ip="10.0.0.5", subnet="10.0.0.0/16", gateway="10.0.0.1")], SETTINGS)
    assert (p.ipv4, p.address, p.gateway) == ("static", "10.0.0.5/16", "10.0.0.1")


def test_dhcp_tag_or_missing_subnet_means_dhcp():
    a, b = network.plan([nic(ip="10.0.0.5", subnet="10.0.0.0/16", tags=("dhcp",)),
                         nic(index=1, ip="10.0.0.6")], SETTINGS)
    assert a.ipv4 == b.ipv4 == "dhcp"


@pytest.mark.parametrize("tags,mode", [((), "slaac"), (("dhcpv6",), "dhcp"),
                                       (("nfdhcpd",), "slaac_dhcp")])
def test_ipv6_modes_by_tag(tags, mode):
    (p,) = network.plan([nic(gateway6="2001:db8::1", tags=tags)], SETTINGS)
    assert p.ipv6 == mode


def test_lone_nic_gets_the_default():
    (p,) = network.plan([nic(mac="aa:00:00:00:00:01")], SETTINGS)
    assert p.ipv4 == "dhcp" and p.ipv6 is None


def test_two_bare_nics_get_nothing():
    assert all(p.ipv4 is None for p in network.plan([nic(), nic(index=1)], SETTINGS))


def test_ifupdown_render():
    plans = network.plan([nic(ip="10.0.0.5", subnet="10.0.0.0/24", gateway="10.0.0.1",
                              gateway6="2001:db8::1", tags=("nfdhcpd",))], SETTINGS)
    text = network.ifupdown(plans)["/etc/network/interfaces"]
    assert "iface eth0 inet dhcp" in text  # nfdhcpd is a DHCP tag too
    assert "iface eth0 inet6 auto\n    privext 0\n    dhcp 1" in text


def test_every_stack_renders():
    plans = network.plan([nic(mac="aa:00:00:00:00:01")], SETTINGS)
    for stack in network.STACKS:
        files = network.RENDERERS[stack](plans)
        assert files and all(text.startswith("#") for text in files.values())


def test_paths_resolve_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc/shadow", root / "etc" / "abs")
    os.symlink("../../../../outside", root / "etc" / "rel")
    assert guest.resolve(str(root), "/etc/abs", "t") == str(root / "etc" / "shadow")
    assert guest.resolve(str(root), "/etc/rel", "t") == str(root / "outside")
    assert guest.resolve(str(root), "/../../x", "t") == str(root / "x")


def test_symlink_loop_is_an_error(tmp_path):
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(CustomizationError, match="too many symbolic links"):
        guest.resolve(str(tmp_path), "/loop", "t")


def test_sparse_copy_keeps_holes_and_content(tmp_path):
    src = tmp_path / "src"
    with open(src, "wb") as stream:
        stream.truncate(16 << 20)
        stream.seek(5 << 20)
        stream.write(os.urandom(100_000))
        stream.seek(12 << 20)
        stream.write(b"\0" * (1 << 20))  # allocated zeros: still a hole on the target
    dst = tmp_path / "dst"
    with open(dst, "wb") as stream:
        stream.write(b"\xff" * (20 << 20))  # old content must not survive
    reports = []
    fd = os.open(dst, os.O_RDWR)
    try:
        with open(src, "rb") as stream:
            copy_mod.Copy(fd, b"H" * 512, 16 << 20, lambda *a: reports.append(a), 0.0,
                          hashlib.sha256(src.read_bytes()).hexdigest()).run(stream, str(src))
    finally:
        os.close(fd)
    data = dst.read_bytes()
    assert data[:512] == b"H" * 512 and data[512:512 + (16 << 20)] == src.read_bytes()
    tail = (20 << 20) - 512 - (16 << 20)  # beyond the image: the old bytes stay
    assert os.stat(dst).st_blocks * 512 < tail + (1 << 20)
    positions = [p for p, _ in reports]
    assert positions == sorted(positions) and reports[-1] == (512 + (16 << 20),) * 2


def test_a_used_disk_gets_its_zero_runs_punched_even_over_its_holes(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    with open(src, "wb") as stream:
        stream.truncate(12 << 20)
        stream.seek(10 << 20)
        stream.write(b"d" * 4096)
    with open(dst, "wb") as stream:  # old data, a hole, old data (a disk used before)
        stream.write(b"\xff" * (2 << 20))
        stream.seek(8 << 20)
        stream.write(b"\xff" * (4 << 20))
    fd = os.open(dst, os.O_RDWR)
    try:
        assert diskwrite._reads_as_zeros(fd, 2 << 20, 8 << 20)
        assert not diskwrite._reads_as_zeros(fd, 2 << 20, (8 << 20) + 1)
        assert not diskwrite._reads_as_zeros(fd, 0, 1)
        with open(src, "rb") as stream:
            copy_mod.Copy(fd, b"", 12 << 20, lambda *a: None, 0.0).run(stream, str(src))
        assert diskwrite._reads_as_zeros(fd, 12 << 20, 13 << 20)  # past the end: no data
    finally:
        os.close(fd)
    assert dst.read_bytes() == src.read_bytes()


def test_a_disk_without_data_gets_no_punch(tmp_path, monkeypatch):
    punched = []
    monkeypatch.setattr(diskwrite, "_punch", lambda fd, offset, length: punched.append(offset))
    src, dst = tmp_path / "src", tmp_path / "dst"
    with open(src, "wb") as stream:
        stream.truncate(12 << 20)
        stream.seek(10 << 20)
        stream.write(b"d" * 4096)
    with open(dst, "wb") as stream:  # a new file disk: all hole
        stream.truncate(16 << 20)
    fd = os.open(dst, os.O_RDWR)
    try:
        with open(src, "rb") as stream:
            copy_mod.Copy(fd, b"", 12 << 20, lambda *a: None, 0.0).run(stream, str(src))
    finally:
        os.close(fd)
    assert punched == []
    assert dst.read_bytes()[:12 << 20] == src.read_bytes()


def test_stream_copy_detects_truncation(tmp_path):
    import io
    fd = os.open(tmp_path / "d", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(ImageError, match="truncated: it ended after 10 of 20 bytes"):
            copy_mod.Copy(fd, b"", 20, lambda *a: None, 1.0).run(io.BytesIO(b"x" * 10))
    finally:
        os.close(fd)


def test_checksum_mismatch_is_an_error(tmp_path):
    import io
    fd = os.open(tmp_path / "d", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(ImageError, match="checksum mismatch"):
            copy_mod.Copy(fd, b"", 3, lambda *a: None, 1.0, "0" * 64).run(io.BytesIO(b"abc"))
    finally:
        os.close(fd)


def test_definition_files():
    files = definition.files(command=("/usr/bin/snf-ganeti",))
    assert files["ganeti_api_version"][0] == "20\n"
    assert files["variants.list"][0] == "default\n"
    names = [line.split()[0] for line in files["parameters.list"][0].splitlines()]
    assert names == list(params.PARAMETER_NAMES) and len(names) == 12
    assert "create_untrusted" not in files
    for script in definition.SCRIPTS:
        text, mode = files[script]
        assert mode == 0o755 and f"exec /usr/bin/snf-ganeti os {script}" in text


def test_task_order_is_snf_images():
    names = [m.TASK.name for m in customize.tasks()]
    assert names[:3] == ["FixPartitionTable", "FilesystemResizeUnmounted", "MountImage"]
    assert names[-1] == "UmountImage" and len(set(names)) == len(names)


def test_docs_list_the_tasks_as_generated():
    text = open(DOCS).read()
    assert customize.docs() in text, "regenerate: snf-ganeti os tasks (docs/osdefinition.md)"


def test_writer_takes_unaligned_buffers_offsets_and_tails(tmp_path):
    disk = tmp_path / "disk"
    disk.write_bytes(b"\xff" * (64 << 10))
    pieces = [(0, os.urandom(8192)),            # bytes: an unaligned buffer at offset 0
              (12288, os.urandom(5000)),        # aligned offset, length with a tail
              (20000, os.urandom(3000))]        # unaligned offset
    aligned = diskwrite.aligned_buffer(16384)
    aligned[:] = os.urandom(16384)
    fd = os.open(disk, os.O_RDWR)
    try:
        with diskwrite.Writer(fd) as writer:
            for offset, data in pieces:
                writer.data(offset, memoryview(data))
            writer.data(32768, memoryview(aligned)[:10000])
            writer.finish()
    finally:
        os.close(fd)
    content = disk.read_bytes()
    for offset, data in pieces:
        assert content[offset:offset + len(data)] == data
    assert content[32768:42768] == aligned[:10000]
    assert content[42768:] == b"\xff" * (len(content) - 42768)


def test_writer_without_direct_io_where_the_disk_refuses_it(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY)  # a directory: reopening it for writing fails
    try:
        with diskwrite.Writer(fd) as writer:
            assert writer.direct_fd is None
    finally:
        os.close(fd)


def test_writer_completes_short_writes(tmp_path, monkeypatch):
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: real_pwrite(
        fd, memoryview(data)[:12288 if len(data) > 12288 else len(data)], offset))
    disk = tmp_path / "disk"
    disk.write_bytes(b"\xff" * (1 << 20))
    data = diskwrite.aligned_buffer(1 << 18)
    data[:] = os.urandom(1 << 18)
    fd = os.open(disk, os.O_RDWR)
    try:
        with diskwrite.Writer(fd) as writer:
            writer.data(0, memoryview(data)[:100000])
            writer.data(131072 + 512, memoryview(bytes(data[:50000])))
            writer.finish()
    finally:
        os.close(fd)
    content = disk.read_bytes()
    assert content[:100000] == data[:100000]
    assert content[131584:181584] == data[:50000]


def test_a_disk_that_ends_while_written_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: 0)
    fd = os.open(tmp_path / "disk", os.O_RDWR | os.O_CREAT)
    try:
        with diskwrite.Writer(fd) as writer, pytest.raises(DiskError, match="ended at 4096"):
            writer.data(4096, memoryview(b"x" * 100))
    finally:
        os.close(fd)


def test_writer_falls_back_to_pwrite_when_copy_file_range_is_refused(tmp_path, monkeypatch):
    # EXDEV from copy_file_range: a fault this kernel does not give for any filesystem pair.
    def refuse(*args):
        raise OSError(errno.EXDEV, "cross-device")
    monkeypatch.setattr(os, "copy_file_range", refuse)
    image, disk = tmp_path / "image", tmp_path / "disk"
    data = os.urandom(3 << 16)
    image.write_bytes(data)
    disk.write_bytes(bytes(1 << 20))
    fd = os.open(disk, os.O_RDWR)
    try:
        with open(image, "rb") as stream, diskwrite.Writer(fd, stream.fileno()) as writer:
            # Unaligned, so neither clone nor direct I/O: copy_file_range is refused. Then
            # an aligned run, which the writer may clone or write directly.
            writer.data(512, memoryview(data)[:1 << 16], 0)
            writer.data(1 << 18, memoryview(data)[1 << 16:], 1 << 16)
            writer.finish()
    finally:
        os.close(fd)
    content = disk.read_bytes()
    assert content[512:512 + (1 << 16)] == data[:1 << 16]
    assert content[1 << 18:(1 << 18) + len(data) - (1 << 16)] == data[1 << 16:]
