"""How image bytes land on an instance's disk (a regular file or a block device).

Data from a source file on the same XFS or btrfs filesystem is cloned (extents
shared). Otherwise data goes through O_DIRECT where the disk allows it, as
snf-image's ``dd oflag=direct``: the image does not pass through the node's
page cache, which would evict what the running instances have there, and the
disk's bandwidth is used while the copy goes on. Zero runs are punched with
fallocate(PUNCH_HOLE): a file disk stays sparse, a block device gets a discard
that reads back as zeros; on a disk with no data at all (a new file disk) there
is nothing to punch.
"""

import errno
import fcntl
import functools
import mmap
import os
import stat
import struct

from snf_ganeti.errors import DiskError

CHUNK = 4 << 20
ZERO_CHUNK = bytes(CHUNK)
_PUNCH = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
_SYNC_FILE_RANGE_WRITE = 2
WRITEBACK = 32 << 20
# Direct I/O needs offsets, lengths and buffers aligned to the disk's logical block size;
# 4 KiB suits 512-byte and 4 KiB-sector disks alike (and the block size of reflinks).
ALIGN = 4096
_FICLONERANGE = 0x4020940D  # _IOW(0x94, 13, struct file_clone_range)
# A direct write failing with these means the filesystem takes no direct I/O after all.
_NO_DIRECT = (errno.EOPNOTSUPP, errno.ENOTTY, errno.ENOSYS)


@functools.cache
def _libc():
    # Loaded on first use (ctypes costs 1.5 ms): a deploy onto a fresh file disk through
    # O_DIRECT needs neither call. The process already has libc: find_library would run
    # ldconfig in a subprocess.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long)
    libc.sync_file_range.argtypes = (ctypes.c_int, ctypes.c_long, ctypes.c_long, ctypes.c_uint)
    return libc


def _punch(fd, offset, length):
    """Deallocate a range (a discard on a block device); 0, or the errno."""
    if _libc().fallocate(fd, _PUNCH, offset, length) == 0:
        return 0
    import ctypes
    return ctypes.get_errno()


def _reads_as_zeros(fd, start, end):
    """Whether ``[start, end)`` of the disk is a hole already (a new file disk): no punch
    needed. A block device, or a filesystem without SEEK_DATA, is all data."""
    try:
        return os.lseek(fd, start, os.SEEK_DATA) >= end
    except OSError as err:
        return err.errno == errno.ENXIO  # no data at or after start


def disk_size(fd):
    """Bytes of the disk open as ``fd`` (a regular file or a block device)."""
    return os.lseek(fd, 0, os.SEEK_END)


def open_disk(path, writable=True):
    try:
        fd = os.open(path, (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC)
    except OSError as err:
        raise DiskError(f"cannot open disk {path}: {err.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        os.close(fd)
        raise DiskError(f"disk {path} is neither a block device nor a regular file")
    return fd


def _pwrite_all(fd, view, offset):
    """Write all of ``view`` at ``offset``; returns the offset after it."""
    while view:
        written = os.pwrite(fd, view, offset)
        if not written:
            raise DiskError(f"the disk ended at {offset} bytes while being written")
        view, offset = view[written:], offset + written
    return offset


def aligned_buffer(size=CHUNK):
    """Page-aligned memory (anonymous mmap) that direct I/O can write from."""
    return mmap.mmap(-1, size)


def _reopen_direct(fd):
    # A second descriptor of the same disk, with O_DIRECT; None where the filesystem
    # refuses it (tmpfs before Linux 6.6, some FUSE filesystems).
    try:
        return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError:
        return None


class Writer:
    """Writes data and punches zero runs (unless the disk held no data at all), coalescing
    adjacent runs into one call.

    Data from a source file on the same XFS or btrfs filesystem is cloned (its extents
    shared: instant, no space used until the instance writes there). Otherwise aligned
    data goes through an O_DIRECT descriptor of the disk when there is one; the rest (an
    unaligned header or tail) through ``fd``, whose fsync in ``finish`` makes all of it
    durable. Use it as a context manager, so the second descriptor is closed.
    """

    def __init__(self, fd, source_fd=None, direct=True):
        self.fd, self.source_fd = fd, source_fd
        self.clone = True  # until the filesystems say they cannot share extents
        self.direct_fd = _reopen_direct(fd) if direct else None
        self._hole_start = self._hole_end = 0
        self._clean_to = 0  # writeback was started for everything before this offset
        # A disk with no data at all (a new file disk) needs no zero run punched: writes
        # only move forward, so a run never covers data written here. Asked once, before
        # any write: on some filesystems (OpenZFS) SEEK_DATA on a dirty file waits for a sync.
        self._blank = _reads_as_zeros(fd, 0, disk_size(fd))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.direct_fd is not None:
            os.close(self.direct_fd)
            self.direct_fd = None

    def data(self, offset, view, source_offset=None):
        """Write ``view`` at ``offset``; with a source file, copied in the kernel from there."""
        self._flush_hole()
        if self.source_fd is None:
            source_offset = None
        if self.clone and source_offset is not None:
            view, offset, source_offset = self._clone(view, offset, source_offset)
        if self.direct_fd is not None and view:
            start = offset
            view, offset = self._direct(view, offset)
            source_offset = shift(source_offset, offset - start)
        if not view:
            return
        if source_offset is not None:
            view, offset, source_offset = self._copy_range(view, offset, source_offset)
        self._start_writeback(_pwrite_all(self.fd, view, offset))

    def _clone(self, view, offset, source_offset):
        """Share the source's extents for the aligned part of ``view``; return what is left."""
        length = len(view) - len(view) % ALIGN
        if not length or offset % ALIGN or source_offset % ALIGN:
            return view, offset, source_offset
        try:
            fcntl.ioctl(self.fd, _FICLONERANGE,
                        struct.pack("qQQQ", self.source_fd, source_offset, length, offset))
        except OSError:  # another filesystem, or one without reflinks (ext4): stop trying
            self.clone = False
            return view, offset, source_offset
        return view[length:], offset + length, source_offset + length

    def _direct(self, view, offset):
        """Write the aligned part of ``view`` with O_DIRECT; return what is left."""
        length = len(view) - len(view) % ALIGN
        try:
            while length and offset % ALIGN == 0:
                written = os.pwrite(self.direct_fd, view[:length], offset)
                if not written:
                    break
                view, offset, length = view[written:], offset + written, length - written
        except OSError as err:
            if err.errno in _NO_DIRECT:
                self.close()
            elif err.errno != errno.EINVAL:  # EINVAL: this buffer is not aligned (a header)
                raise
        return view, offset

    def _start_writeback(self, end):
        # Start writing dirty pages to the disk while copying goes on (no waiting): the
        # final fsync then has little left to do, instead of the whole image.
        if end - self._clean_to >= WRITEBACK:
            _libc().sync_file_range(self.fd, self._clean_to, end - self._clean_to,
                                  _SYNC_FILE_RANGE_WRITE)
            self._clean_to = end

    def _copy_range(self, view, offset, source_offset):
        # copy_file_range spares the copy through user space; where it cannot work
        # (old kernels, some filesystem pairs) the rest goes through pwrite.
        try:
            while view:
                n = os.copy_file_range(self.source_fd, self.fd, len(view), source_offset, offset)
                if n == 0:
                    break
                view, offset, source_offset = view[n:], offset + n, source_offset + n
        except OSError as err:
            if err.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            self.source_fd = None
        return view, offset, source_offset

    def zero(self, offset, length):
        if offset != self._hole_end:
            self._flush_hole()
            self._hole_start = offset
        self._hole_end = offset + length

    def _flush_hole(self):
        start, end = self._hole_start, self._hole_end
        if end > start and not self._blank:
            code = _punch(self.fd, start, end - start)
            if code and code not in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL):
                raise DiskError(f"cannot zero disk range: {os.strerror(code)}")
            if code:
                self._write_zeros(start, end - start)
        self._hole_start = self._hole_end

    def _write_zeros(self, offset, length):
        zeros = memoryview(ZERO_CHUNK)
        end = offset + length
        while offset < end:
            offset = _pwrite_all(self.fd, zeros[:min(end - offset, CHUNK)], offset)

    def finish(self):
        self._flush_hole()
        os.fsync(self.fd)


def invalidate(fd):
    """Zero the first MiB (partition table, boot sector) so a failed deploy never looks valid."""
    _pwrite_all(fd, memoryview(ZERO_CHUNK)[:min(1 << 20, disk_size(fd))], 0)
    os.fsync(fd)


def shift(offset, delta):
    """``offset`` moved by ``delta``; None stays None (no source file)."""
    return None if offset is None else offset + delta
