"""The disk writes one chunk while the copy reads, checks and hashes the next.

A direct write waits for the disk; finding a chunk's zero blocks and hashing it
wait for the CPU. One after the other, each waits for the other. A ``Pipeline``
runs the writer's calls in one background thread, in the order they were given,
so both stay busy (snf-image gets the same from its ``pv | dd`` processes).
"""

import queue
import threading

# Chunks a pipeline may still hold when ``call`` returns: one being written, one waiting.
# A copy that reuses buffers needs one more than this.
HELD = 2


class Pipeline:
    """Runs calls in order in one thread. A call's failure is raised in the caller by the
    next ``call`` or ``wait``, or on leaving; the calls after it are skipped. Use it as a
    context manager: leaving it waits for the thread, so no write happens after (a wipe of
    a failed disk, closing the disk, unmapping a buffer being written)."""

    def __init__(self):
        self._calls = queue.Queue(maxsize=HELD - 1)
        self._failure = None
        self._reported = False
        self._abandoned = False
        self._thread = threading.Thread(target=self._work, name="disk-writer", daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        # Leaving on an error skips what is still queued; the disk is wiped after.
        self.close(abandon=error is not None)
        if not self._reported and (error is None or isinstance(error, Exception)):
            self._raise_failure()  # unseen by the caller: a failing disk is reported first

    def call(self, function, *args):
        """Run ``function(*args)`` after every call given before it."""
        self._raise_failure()
        self._calls.put((function, args))

    def wait(self):
        """Return once every call given has run; raise the failure of one that failed."""
        self._calls.join()
        self._raise_failure()

    def close(self, abandon=False):
        """Let the calls given run (none after a failure; with ``abandon``, none that has
        not started), then wait until the thread has ended, even through an interrupt,
        which is raised after."""
        self._abandoned = self._abandoned or abandon
        interrupt, stopping = None, False
        while self._thread.is_alive():
            try:
                if not stopping:
                    self._calls.put(None)
                    stopping = True
                self._thread.join()
            except BaseException as err:  # a signal: the thread must still end first
                interrupt, self._abandoned = err, True
        if interrupt is not None:
            raise interrupt

    def _raise_failure(self):
        if self._failure is not None:
            self._reported = True
            raise self._failure

    def _work(self):
        while True:
            item = self._calls.get()
            try:
                if item is None:
                    return
                if self._failure is None and not self._abandoned:
                    function, args = item
                    function(*args)
            except BaseException as err:  # raised in the caller's thread instead
                self._failure = err
            finally:
                self._calls.task_done()
