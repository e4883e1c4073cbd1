"""The OS ``export``, ``import``, ``rename`` and ``verify`` scripts (API 20)."""

import logging
import os
import sys

from snf_ganeti.errors import DiskError, EnvVarError, InvalidOSParameter
from snf_ganeti.osdefinition import copy as copy_mod
from snf_ganeti.osdefinition import diskwrite
from snf_ganeti.osdefinition import params
from snf_ganeti.osdefinition.pipeline import Pipeline

log = logging.getLogger(__name__)
VARIANTS = ("default",)


def _device(environ, action):
    prefix = action.upper()
    for key in (f"{prefix}_DISK_PATH", f"{prefix}_DEVICE"):
        if environ.get(key):
            return environ[key]
    raise EnvVarError(f"{prefix}_DEVICE", f"missing from the {action} script's environment")


def export(environ, out=None):
    """Stream the disk to stdout; its size first to EXP_SIZE_FD when Ganeti asks."""
    params.check_api(environ)
    fd = diskwrite.open_disk(_device(environ, "export"), writable=False)
    out_fd = (out or sys.stdout.buffer).fileno()
    try:
        size = diskwrite.disk_size(fd)
        if environ.get("EXP_SIZE_FD"):
            os.write(int(environ["EXP_SIZE_FD"]), f"{size}\n".encode())
        offset = 0
        while offset < size:
            sent = _send(out_fd, fd, offset, min(diskwrite.CHUNK, size - offset))
            if sent == 0:
                raise DiskError(f"disk ended at {offset} of {size} bytes while exporting")
            offset += sent
    finally:
        os.close(fd)


def _send(out_fd, fd, offset, count):
    try:
        return os.sendfile(out_fd, fd, offset, count)
    except OSError:  # an output sendfile cannot write to: plain copy
        data = os.pread(fd, count, offset)
        os.write(out_fd, data)
        return len(data)


def import_(environ, stream=None):
    """Write stdin onto the disk, zero blocks as holes; fail if it does not fit."""
    params.check_api(environ)
    stream = stream or sys.stdin.buffer
    fd = diskwrite.open_disk(_device(environ, "import"))
    try:
        capacity = diskwrite.disk_size(fd)
        imported = 0
        with diskwrite.Writer(fd) as writer:
            with Pipeline() as writes:
                for offset, view in copy_mod.stream_chunks(stream, capacity):
                    copy_mod.hand_over(writes, writer, offset, view)
                    imported = offset + len(view)
                writes.wait()
            if stream.read(1):
                raise DiskError(f"imported data exceeds the disk's {capacity} bytes")
            writer.finish()
        log.info("imported %d bytes", imported)
    finally:
        os.close(fd)


def rename(environ):
    """Nothing in the image depends on the old name being changed now (as snf-image)."""
    log.info("rename %s -> %s: nothing to do", environ.get("OLD_INSTANCE_NAME"),
             environ.get("INSTANCE_NAME"))


def verify(environ, what=("parameters",)):
    params.check_api(environ)
    variant = environ.get("OS_VARIANT", "")
    if variant and variant not in VARIANTS:
        raise InvalidOSParameter("OS variant", f"{variant!r} is not one of {', '.join(VARIANTS)}")
    if "parameters" in what:
        params.verify(params.raw_params(environ))
