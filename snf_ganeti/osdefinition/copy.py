"""Streaming, sparse-aware copy of an image onto the instance's disk.

The image is read in 4 MiB chunks: from a local file only its data extents
(holes found with SEEK_DATA/SEEK_HOLE without reading them), from a stream
(http, stdin) all of it. Zero blocks become holes, data runs are written by a
``diskwrite.Writer`` in a ``pipeline.Pipeline``: the disk writes one chunk while
the next is read, checked for zero blocks and hashed. Progress is reported every
``interval`` seconds and once at the end, where position == total.
"""

import contextlib
import errno
import itertools
import mmap
import os
import time

from snf_ganeti.errors import ImageError
from snf_ganeti.osdefinition.diskwrite import CHUNK, ZERO_CHUNK, Writer, aligned_buffer, shift
from snf_ganeti.osdefinition.pipeline import HELD, Pipeline

BLOCK = 64 << 10


def runs(view):
    """``view``'s runs of data blocks and of zero blocks, as (start, end, is_data)."""
    if _is_zero(view):
        return [(0, len(view), False)]
    found = []
    for start in range(0, len(view), BLOCK):
        end = min(start + BLOCK, len(view))
        is_data = not _is_zero(view[start:end])
        if found and found[-1][2] == is_data:
            found[-1] = (found[-1][0], end, is_data)
        else:
            found.append((start, end, is_data))
    return found


def write_runs(writer, offset, view, found, source_offset=None):
    """Write ``view`` at ``offset`` by ``found``, its ``runs``: data runs in one write each,
    zero runs as holes. ``source_offset``: where ``view`` is in the writer's source file."""
    for start, end, is_data in found:
        if is_data:
            writer.data(offset + start, view[start:end], shift(source_offset, start))
        else:
            writer.zero(offset + start, end - start)


def _is_zero(view):
    # bytes.startswith compares with memcmp: 30 GB/s of zeros, where memoryview == bytes
    # goes byte by byte (under 1 GB/s) and would slow every streamed image to that.
    return ZERO_CHUNK.startswith(view)


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


@contextlib.contextmanager
def _mapping(fd, size):
    """The first ``size`` bytes of the file ``fd``, mapped read-only, as a memoryview."""
    mapped = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    mapped.madvise(mmap.MADV_SEQUENTIAL)
    view = memoryview(mapped)
    try:
        yield view
    finally:
        view.release()
        # After a failed write its traceback still holds the chunk being written: the
        # mapping then goes when that is freed, and the failure is what gets reported.
        with contextlib.suppress(BufferError):
            mapped.close()


class Copy:
    """One copy of ``header`` + ``size`` image bytes onto ``fd``, reporting to ``progress``."""

    def __init__(self, fd, header, size, progress, interval, sha256=None, clock=time.monotonic):
        self.fd, self.header, self.size = fd, header, size
        self.total = len(header) + size
        self.progress, self.interval, self.clock = progress, interval, clock
        self.expected = sha256
        self.hash = _sha256() if sha256 else None
        self.done = 0
        self._reported_at = None

    def run(self, stream, path=None):
        """Copy from ``stream`` (or the local file ``path``); raise on short or long input."""
        self.progress(0, self.total)
        self._reported_at = self.clock()
        with Writer(self.fd, stream.fileno() if path is not None else None) as writer:
            if self.header:
                writer.data(0, memoryview(self.header))
                self._advance(len(self.header))
            if path is not None:
                self._from_file(writer, stream.fileno())
            elif stream is not None:
                self._from_stream(writer, stream)
            writer.finish()
        self._check_hash()
        self.progress(self.done, self.total)

    def _advance(self, count):
        self.done += count
        now = self.clock()
        if now - self._reported_at >= self.interval and self.done < self.total:
            self._reported_at = now
            self.progress(self.done, self.total)

    def _from_stream(self, writer, stream):
        with Pipeline() as writes:
            for offset, view in stream_chunks(stream, self.size):
                self._take(writes, writer, len(self.header) + offset, view)
            writes.wait()
        if self.done < self.total:
            raise ImageError(f"image is truncated: it ended after "
                             f"{self.done - len(self.header)} of {self.size} bytes")
        if stream.read(1):
            raise ImageError(f"image is longer than its announced size of {self.size} bytes")

    def _from_file(self, writer, fd):
        # Data extents are read through a mapping of the page cache: one copy fewer than
        # read()+write(), and holes are skipped without being read at all.
        base = len(self.header)
        if os.fstat(fd).st_size < self.size:
            raise ImageError(f"image file shrank to {os.fstat(fd).st_size} bytes while "
                             f"being copied (expected {self.size})")
        with contextlib.ExitStack() as stack:
            view = stack.enter_context(_mapping(fd, self.size)) if self.size else None
            writes = stack.enter_context(Pipeline())  # left first: no write after the unmap
            for offset, length, is_data in _extents(fd, self.size):
                if not is_data:
                    writes.call(writer.zero, base + offset, length)
                    self._hash_zeros(length)
                    self._advance(length)
                    continue
                for start in range(offset, offset + length, CHUNK):
                    end = min(start + CHUNK, offset + length)
                    self._take(writes, writer, base + start, view[start:end], start)
            writes.wait()

    def _take(self, writes, writer, offset, view, source_offset=None):
        if self.hash:  # here, while the disk writes the previous chunk
            self.hash.update(view)
        hand_over(writes, writer, offset, view, source_offset)
        self._advance(len(view))

    def _hash_zeros(self, length):
        if self.hash:
            while length:
                n = min(length, CHUNK)
                self.hash.update(ZERO_CHUNK[:n])
                length -= n

    def _check_hash(self):
        if self.hash and self.hash.hexdigest() != self.expected.lower():
            raise ImageError(f"image checksum mismatch: sha256 is {self.hash.hexdigest()}, "
                             f"expected {self.expected.lower()}")


def hand_over(writes, writer, offset, view, source_offset=None):
    """Have the pipeline ``writes`` put ``view`` at ``offset``; its zero blocks are found
    here, while the disk writes what was handed over before."""
    writes.call(write_runs, writer, offset, view, runs(view), source_offset)


def stream_chunks(stream, limit):
    """(offset, view) for what ``stream`` holds, a chunk at a time, up to ``limit`` bytes.

    A view's buffer is read into again only after HELD more views: by then a pipeline
    no longer holds it."""
    buffers = [memoryview(aligned_buffer()) for _ in range(HELD + 1)]
    offset = 0
    for count in itertools.count():
        view = buffers[count % len(buffers)][:min(CHUNK, limit - offset)]
        n = read_full(stream, view) if view else 0
        if not n:
            return
        yield offset, view[:n]
        offset += n


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
