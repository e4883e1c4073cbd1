"""Image formats: what goes before the image on the disk, and which properties they imply.

``diskdump`` is a whole disk; ``extdump``/``ntfsdump`` are one filesystem that
gets a synthetic 1 MiB MBR header with partition 1 spanning exactly the image
(spec §2.4); ``qcow2`` is converted by qemu-img.
"""

import json
import os
import struct
from dataclasses import dataclass

from snf_ganeti import pathutils
from snf_ganeti.errors import ImageError
from snf_ganeti.osdefinition.commands import run

SECTOR = 512
HEADER_SIZE = 1 << 20
_PARTITION_TYPE = {"extdump": 0x83, "ntfsdump": 0x07}
_FAMILY = {"extdump": "linux", "ntfsdump": "windows"}


@dataclass(frozen=True)
class Layout:
    """How an image lies on the disk: the header before it, its size, and the properties the
    format implies."""

    header: bytes       # written at offset 0, the image follows it
    image_size: int     # bytes of image data (after conversion, for qcow2)
    properties: tuple   # implied image properties, overridden by the given ones

    @property
    def total(self):
        return len(self.header) + self.image_size


def layout(img_format, size, boot_code=None):
    """The Layout of an image of ``size`` bytes (for qcow2: its virtual size)."""
    if img_format not in _PARTITION_TYPE:
        return Layout(b"", size, ())
    if size % SECTOR:
        raise ImageError(f"{img_format} image size {size} is not a multiple of {SECTOR} bytes")
    header = mbr_header(size // SECTOR, _PARTITION_TYPE[img_format], boot_code)
    return Layout(header, size, (("OSFAMILY", _FAMILY[img_format]), ("ROOT_PARTITION", "1")))


def mbr_header(sectors, partition_type, boot_code=None):
    """A 1 MiB disk header: MBR with one bootable primary partition at sector 2048."""
    start = HEADER_SIZE // SECTOR
    if start + sectors > 0xFFFFFFFF:
        raise ImageError("filesystem dump too large for an MBR partition (2 TiB)")
    code = (boot_code or b"")[:440].ljust(440, b"\0")
    signature = os.urandom(4)
    chs_max = b"\xfe\xff\xff"  # LBA-only addressing
    entry = struct.pack("<B3sB3sII", 0x80, chs_max, partition_type, chs_max, start, sectors)
    mbr = code + signature + b"\0\0" + entry + b"\0" * 48 + b"\x55\xaa"
    return mbr.ljust(HEADER_SIZE, b"\0")


def boot_code(path=pathutils.MBR_BOOT_CODE):
    """syslinux's generic MBR boot code if installed; zeros still give a valid disk."""
    try:
        with open(path, "rb") as stream:
            return stream.read(440)
    except OSError:
        return None


def qcow2_size(path):
    """Virtual size of a qcow2 image file; ImageError if it is not a sound qcow2."""
    info = json.loads(run(["qemu-img", "info", "--output=json", path], _image_error,
                          f"qemu-img info {path}"))
    if info.get("format") != "qcow2":
        raise ImageError(f"image {path} is {info.get('format')}, not qcow2 (img_format=qcow2)")
    run(["qemu-img", "check", "-q", "-f", "qcow2", path], _image_error,
        f"qemu-img check of {path} (corrupt qcow2)")
    return int(info["virtual-size"])


def _image_error(text):
    return ImageError(text)
