"""Streaming, sparse-aware copy of an image onto the instance's disk.

Data blocks are written with pwrite, through O_DIRECT where the disk allows
it (as snf-image's ``dd oflag=direct``): the image does not pass through the
node's page cache, which would evict what the running instances have there,
and the disk's bandwidth is used as the data comes. Runs of zero blocks (and
the holes of a sparse local image, found with SEEK_DATA/SEEK_HOLE without
reading them) are punched with fallocate(PUNCH_HOLE): a file disk stays
sparse, a block device gets a discard that reads back as zeros. Progress is
reported every ``interval`` seconds and once at the end, where position ==
total.
"""

import contextlib
import ctypes
import errno
import mmap
import os
import stat
import time

from snf_ganeti.errors import DiskError, ImageError

CHUNK = 4 << 20
BLOCK = 64 << 10
_ZERO_CHUNK = bytes(CHUNK)
_PUNCH = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
# The process already has libc: find_library would run ldconfig in a subprocess each time.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long)
_libc.sync_file_range.argtypes = (ctypes.c_int, ctypes.c_long, ctypes.c_long, ctypes.c_uint)
_SYNC_FILE_RANGE_WRITE = 2
WRITEBACK = 32 << 20
# Direct I/O needs offsets, lengths and buffers aligned to the disk's logical block size;
# 4 KiB suits 512-byte and 4 KiB-sector disks alike.
ALIGN = 4096


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
    """Writes data and punches zero runs, coalescing adjacent runs into one call.

    Aligned data goes through an O_DIRECT descriptor of the disk when there is one; the
    rest (an unaligned header or tail) through ``fd``, whose fsync in ``finish`` makes
    both durable. Use it as a context manager, so the second descriptor is closed.
    """

    def __init__(self, fd, source_fd=None, direct=True):
        self.fd, self.source_fd = fd, source_fd
        self.direct_fd = _reopen_direct(fd) if direct else None
        self._hole_start = self._hole_end = 0
        self._clean_to = 0  # writeback was started for everything before this offset

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
        if self.direct_fd is not None:
            start = offset
            view, offset = self._direct(view, offset)
            if not view:
                return
            source_offset = _shift(source_offset, offset - start)
        if source_offset is not None and self.source_fd is not None:
            view, offset, source_offset = self._copy_range(view, offset, source_offset)
        while view:
            written = os.pwrite(self.fd, view, offset)
            if not written:
                raise DiskError(f"the disk ended at {offset} bytes while being written")
            view, offset = view[written:], offset + written
        self._start_writeback(offset)

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
            if err.errno != errno.EINVAL:  # EINVAL: this buffer is not aligned (a header)
                raise
        return view, offset

    def _start_writeback(self, end):
        # Start writing dirty pages to the disk while copying goes on (no waiting): the
        # final fsync then has little left to do, instead of the whole image.
        if end - self._clean_to >= WRITEBACK:
            _libc.sync_file_range(self.fd, self._clean_to, end - self._clean_to,
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
        length = self._hole_end - self._hole_start
        if length > 0 and _libc.fallocate(self.fd, _PUNCH, self._hole_start, length) != 0:
            code = ctypes.get_errno()
            if code not in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL):
                raise DiskError(f"cannot zero disk range: {os.strerror(code)}")
            self._write_zeros(self._hole_start, length)
        self._hole_start = self._hole_end

    def _write_zeros(self, offset, length):
        while length:
            n = min(length, CHUNK)
            os.pwrite(self.fd, _ZERO_CHUNK[:n], offset)
            offset, length = offset + n, length - n

    def finish(self):
        self._flush_hole()
        os.fsync(self.fd)


def put(writer, offset, view, source_offset=None):
    """Write ``view`` at ``offset``: runs of data blocks in one write, zero blocks as holes.

    ``source_offset``: where ``view`` is in the writer's source file, if it is one.
    """
    if _is_zero(view):
        writer.zero(offset, len(view))
        return
    data_start = None
    for start in range(0, len(view), BLOCK):
        block = view[start:start + BLOCK]
        if _is_zero(block):
            if data_start is not None:
                writer.data(offset + data_start, view[data_start:start],
                            _shift(source_offset, data_start))
                data_start = None
            writer.zero(offset + start, len(block))
        elif data_start is None:
            data_start = start
    if data_start is not None:
        writer.data(offset + data_start, view[data_start:], _shift(source_offset, data_start))


def _is_zero(view):
    # bytes.startswith compares with memcmp: 30 GB/s of zeros, where memoryview == bytes
    # goes byte by byte (under 1 GB/s) and would slow every streamed image to that.
    return _ZERO_CHUNK.startswith(view)


def _shift(offset, delta):
    return None if offset is None else offset + delta


def _extents(fd, size):
    """(offset, length, is_data) covering a local file, holes found without reading."""
    offset = 0
    while offset < size:
        try:
            data = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as err:
            if err.errno != errno.ENXIO:
                raise
            data = size
        if data > offset:
            yield offset, min(data, size) - offset, False
        if data >= size:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
        yield data, hole - data, True
        offset = hole


class Copy:
    """One copy of ``header`` + ``size`` image bytes onto ``fd``, reporting to ``progress``."""

    def __init__(self, fd, header, size, progress, interval, sha256=None, clock=time.monotonic):
        self.fd, self.header, self.size = fd, header, size
        self.total = len(header) + size
        self.progress, self.interval, self.clock = progress, interval, clock
        self.expected = sha256
        self.hash = _sha256() if sha256 else None
        self.writer = None
        self.done = 0
        self._reported_at = None

    def run(self, stream, path=None):
        """Copy from ``stream`` (or the local file ``path``); raise on short or long input."""
        self.progress(0, self.total)
        self._reported_at = self.clock()
        with Writer(self.fd, stream.fileno() if path is not None else None) as self.writer:
            if self.header:
                self.writer.data(0, memoryview(self.header))
                self._advance(len(self.header))
            if path is not None:
                self._from_file(stream.fileno())
            elif stream is not None:
                self._from_stream(stream)
            self.writer.finish()
        self._check_hash()
        self.progress(self.done, self.total)

    def _advance(self, count):
        self.done += count
        now = self.clock()
        if now - self._reported_at >= self.interval and self.done < self.total:
            self._reported_at = now
            self.progress(self.done, self.total)

    def _from_stream(self, stream):
        view = memoryview(aligned_buffer())
        copied = 0
        while copied < self.size:
            n = read_full(stream, view[:min(CHUNK, self.size - copied)])
            if n == 0:
                raise ImageError(f"image is truncated: it ended after {copied} of "
                                 f"{self.size} bytes")
            self._take(len(self.header) + copied, view[:n])
            copied += n
        if stream.read(1):
            raise ImageError(f"image is longer than its announced size of {self.size} bytes")

    def _from_file(self, fd):
        # Data extents are read through a mapping of the page cache: one copy fewer than
        # read()+write(), and holes are skipped without being read at all.
        base = len(self.header)
        if os.fstat(fd).st_size < self.size:
            raise ImageError(f"image file shrank to {os.fstat(fd).st_size} bytes while "
                             f"being copied (expected {self.size})")
        with contextlib.ExitStack() as stack:
            mapped = stack.enter_context(mmap.mmap(fd, self.size, prot=mmap.PROT_READ)) \
                if self.size else None
            if mapped is not None:
                mapped.madvise(mmap.MADV_SEQUENTIAL)
            view = stack.enter_context(memoryview(mapped)) if mapped is not None else None
            for offset, length, is_data in _extents(fd, self.size):
                if not is_data:
                    self.writer.zero(base + offset, length)
                    self._hash_zeros(length)
                    self._advance(length)
                    continue
                for start in range(offset, offset + length, CHUNK):
                    end = min(start + CHUNK, offset + length)
                    self._take(base + start, view[start:end], start)

    def _take(self, offset, view, source_offset=None):
        if self.hash:
            self.hash.update(view)
        put(self.writer, offset, view, source_offset)
        self._advance(len(view))

    def _hash_zeros(self, length):
        if self.hash:
            while length:
                n = min(length, CHUNK)
                self.hash.update(_ZERO_CHUNK[:n])
                length -= n

    def _check_hash(self):
        if self.hash and self.hash.hexdigest() != self.expected.lower():
            raise ImageError(f"image checksum mismatch: sha256 is {self.hash.hexdigest()}, "
                             f"expected {self.expected.lower()}")


def _sha256():
    # Imported only when an image has a checksum: every OS script pays for its imports.
    import hashlib
    return hashlib.sha256()


def read_full(stream, view):
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def invalidate(fd):
    """Zero the first MiB (partition table, boot sector) so a failed deploy never looks valid."""
    os.pwrite(fd, bytes(1 << 20)[:min(1 << 20, disk_size(fd))], 0)
    os.fsync(fd)
