"""Ganeti 3.0 job files: ``queue/job-<id>`` and ``queue/archive/<id // 10000>/job-<id>``.

A job file is one JSON object (ganeti:lib/jqueue ``_QueuedJob.Serialize``)
rewritten by rename on every change; it has no status of its own, the job
status is derived from the opcode statuses exactly as Ganeti derives it.
"""

import os
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from snf_ganeti.errors import JobFileError
from snf_ganeti.ganeti import _fields as F

# Ganeti's own pattern (lib/constants.py JOB_FILE_RE); always used with
# fullmatch, so temporary names such as job-74e1ei1lz.new never match.
JOB_FILE_RE = re.compile(r"^job-(\d+)$")

# Ganeti's jstoreJobsPerArchiveDirectory.
JOBS_PER_ARCHIVE_DIRECTORY = 10000

QUEUED = "queued"
WAITING = "waiting"
CANCELING = "canceling"
RUNNING = "running"
CANCELED = "canceled"
SUCCESS = "success"
ERROR = "error"

# Op and job statuses of Ganeti 3.0 (src/Ganeti/Types.hs OpStatus, JobStatus).
STATUSES = frozenset({QUEUED, WAITING, CANCELING, RUNNING, CANCELED, SUCCESS, ERROR})
FINALIZED = frozenset({CANCELED, SUCCESS, ERROR})

Timestamp = tuple[int, int]


class LogEntry(NamedTuple):
    """One feedback line: ``[serial, [sec, usec], type, message]`` in the file."""

    serial: int
    timestamp: Timestamp
    log_type: str
    message: Any


@dataclass(frozen=True)
class OpCode:
    """One opcode of a job: its input, status, result and log, and when it started and ended."""

    index: int
    op_id: str
    input: dict
    status: str
    result: Any
    log: tuple[LogEntry, ...]
    start_timestamp: Timestamp | None
    exec_timestamp: Timestamp | None
    end_timestamp: Timestamp | None
    priority: int | None = None

    @property
    def last_log_message(self):
        return self.log[-1][-1] if self.log else None


@dataclass(frozen=True)
class Job:
    """A job in Ganeti's queue: its opcodes and timestamps; its status is derived from theirs."""

    id: int
    ops: tuple[OpCode, ...]
    received_timestamp: Timestamp | None
    start_timestamp: Timestamp | None
    end_timestamp: Timestamp | None
    # Set once luxid has picked the job up / forked its process.
    livelock: str | None = None
    process_id: int | None = None

    @property
    def status(self):
        return calc_status(op.status for op in self.ops)

    @property
    def finalized(self):
        return self.status in FINALIZED


def calc_status(op_statuses):
    """The job status Ganeti derives from its op statuses (jqueue CalcStatus).

    The first canceling, canceled or error op decides; otherwise the last
    waiting or running op; otherwise queued, unless every op succeeded.
    """
    status = QUEUED
    all_success = True
    for op_status in op_statuses:
        if op_status == SUCCESS:
            continue
        all_success = False
        if op_status in (CANCELING, CANCELED, ERROR):
            return op_status
        if op_status in (WAITING, RUNNING):
            status = op_status
    return SUCCESS if all_success else status


def job_id_from_name(name):
    """The job id if ``name`` is exactly ``job-<digits>``, else None."""
    match = JOB_FILE_RE.fullmatch(name)
    if match is None or not name.isascii():
        return None
    return int(match.group(1))


def queue_path(queue_dir, job_id):
    return os.path.join(queue_dir, f"job-{job_id}")


def archive_path(queue_dir, job_id):
    return os.path.join(queue_dir, "archive", str(job_id // JOBS_PER_ARCHIVE_DIRECTORY),
                        f"job-{job_id}")


def read_job(path):
    """Parse the job file at ``path``.

    OSError (notably FileNotFoundError, which is normal when the job was
    archived between the event and the read) is left to the caller.
    """
    with open(path, "rb") as f:
        data = f.read()
    return parse_job(data, str(path))


def parse_job(data, source):
    """Parse the contents of a job file; ``source`` names it in errors."""
    try:
        return _job(F.load(data))
    except F.Invalid as err:
        raise JobFileError(source, str(err)) from None


def _job(doc):
    F.check(doc, dict, "top level")
    ops = F.get(doc, "ops", list, "")
    if not ops:
        raise F.Invalid("ops", "empty, a job has at least one opcode")
    return Job(
        id=_job_id(doc),
        ops=tuple(_opcode(op, i) for i, op in enumerate(ops)),
        received_timestamp=_timestamp(doc, "received_timestamp", ""),
        start_timestamp=_timestamp(doc, "start_timestamp", ""),
        end_timestamp=_timestamp(doc, "end_timestamp", ""),
        livelock=F.get(doc, "livelock", (str, F.NULL), "", None),
        process_id=F.get(doc, "process_id", (int, F.NULL), "", None),
    )


def _job_id(doc):
    # Ganeti restores the id with int(), so a decimal string is accepted too.
    job_id = F.get(doc, "id", (int, str), "")
    if isinstance(job_id, str):
        if not (job_id.isascii() and job_id.isdigit()):
            raise F.Invalid("id", f"not a job id: {F.show(job_id)}")
        job_id = int(job_id)
    if job_id < 0:
        raise F.Invalid("id", f"negative: {job_id}")
    return job_id


def _opcode(op, index):
    where = F.index_path("ops", index)
    F.check(op, dict, where)
    op_input = F.get(op, "input", dict, where)
    op_id = F.get(op_input, "OP_ID", str, F.key_path(where, "input"))
    status = F.get(op, "status", str, where)
    if status not in STATUSES:
        raise F.Invalid(F.key_path(where, "status"), f"unknown status {F.show(status)}")
    return OpCode(
        index=index,
        op_id=op_id,
        input=op_input,
        status=status,
        result=F.get(op, "result", F.ANY, where, None),
        log=_log(F.get(op, "log", list, where, []), F.key_path(where, "log")),
        start_timestamp=_timestamp(op, "start_timestamp", where),
        exec_timestamp=_timestamp(op, "exec_timestamp", where),
        end_timestamp=_timestamp(op, "end_timestamp", where),
        priority=F.get(op, "priority", (int, F.NULL), where, None),
    )


def _log(entries, where):
    log = []
    for i, entry in enumerate(entries):
        here = F.index_path(where, i)
        F.check(entry, list, here)
        if len(entry) != 4:
            raise F.Invalid(here, f"expected [serial, timestamp, type, message], got {len(entry)} items")
        serial, stamp, log_type, message = entry
        log.append(LogEntry(
            serial=F.check(serial, int, F.index_path(here, 0)),
            timestamp=_check_timestamp(stamp, F.index_path(here, 1)),
            log_type=F.check(log_type, str, F.index_path(here, 2)),
            message=message,
        ))
    return tuple(log)


def _timestamp(obj, key, where):
    """An optional ``[seconds, microseconds]``; null and absent both mean unset."""
    value = F.get(obj, key, (list, F.NULL), where, None)
    return None if value is None else _check_timestamp(value, F.key_path(where, key))


def _check_timestamp(value, where):
    F.check(value, list, where)
    if len(value) != 2:
        raise F.Invalid(where, f"expected [seconds, microseconds], got {len(value)} items")
    sec = F.check(value[0], int, F.index_path(where, 0))
    usec = F.check(value[1], int, F.index_path(where, 1))
    if sec < 0:
        raise F.Invalid(where, f"negative seconds {sec}")
    if not 0 <= usec <= 999999:
        raise F.Invalid(where, f"microseconds {usec} out of range 0..999999")
    return (sec, usec)
