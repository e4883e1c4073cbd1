"""Running host tools (sfdisk, e2fsck, mount, qemu-img ...) with errors that name them.

Only host programs run here, with argv lists (no shell); nothing from the image
is ever executed.
"""

import logging

log = logging.getLogger(__name__)
STDERR_LINES = 10


def run(argv, error, what=None, input=None, ok=(0,)):
    """Run ``argv``; on failure raise ``error(message)`` with the tool's last stderr lines.

    ``error`` builds the exception from one line of text; ``what`` says what
    was being done (default: the program's name).
    """
    log.debug("running %s", " ".join(map(str, argv)))
    try:
        proc = _subprocess().run([str(a) for a in argv], input=input, capture_output=True,
                              text=True, check=False)
    except FileNotFoundError:
        raise error(f"{argv[0]} is not installed") from None
    if proc.returncode not in ok:
        raise error(f"{what or argv[0]} failed (exit {proc.returncode}): {tail(proc.stderr)}")
    return proc.stdout


def tail(text, lines=STDERR_LINES):
    kept = [line.strip() for line in (text or "").strip().splitlines()[-lines:] if line.strip()]
    return " / ".join(kept) or "no error output"


def popen(argv):
    """``argv`` started with its stdout and stderr piped, for tools whose output streams."""
    log.debug("starting %s", " ".join(map(str, argv)))
    sub = _subprocess()
    return sub.Popen([str(a) for a in argv], stdout=sub.PIPE, stderr=sub.PIPE)


def _subprocess():
    # Imported on first use: a plain diskdump deploy runs no tool, and importing subprocess
    # costs 2 ms on every OS script.
    import subprocess
    return subprocess
