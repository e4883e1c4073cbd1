"""Job files: parsing, Ganeti's status derivation, names, and every malformed case."""

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snf_ganeti.errors import JobFileError
from snf_ganeti.ganeti import jobs
from snf_ganeti.ganeti.jobs import archive_path, calc_status, job_id_from_name, parse_job, read_job
from tests.support.jsonfuzz import JSON_VALUES, mutated, paths as _paths

pytestmark = pytest.mark.unit

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "ganeti"

# ganeti-observed.md §4: job-30 (gnt-instance startup), complete.
FINISHED = {
    "id": 30,
    "ops": [{"input": {"instance_name": "inst2b.example.test",
                       "instance_uuid": "fca62685-4eb1-40db-a48d-d68fa59b809e",
                       "force": False, "ignore_offline_nodes": False, "hvparams": {}, "beparams": {},
                       "no_remember": False, "startup_paused": False, "shutdown_timeout": 120,
                       "dry_run": False, "debug_level": 0, "priority": 0, "depends": None,
                       "comment": None,
                       "reason": [["gnt:client:gnt-instance", "startup", 1795465435798418944],
                                  ["gnt:opcode:instance_startup", "job=30;index=0",
                                   1795465435799737000]],
                       "OP_ID": "OP_INSTANCE_STARTUP"},
             "status": "success", "result": None, "log": [],
             "start_timestamp": [1795465436, 164813], "exec_timestamp": [1795465436, 174456],
             "end_timestamp": [1795465436, 779471], "priority": 0}],
    "start_timestamp": [1795465436, 164813], "end_timestamp": [1795465436, 779482],
    "received_timestamp": [1795465435, 799737],
    "livelock": "/var/run/ganeti/livelocks/job_000030_1795465436", "process_id": 15691,
}

# ganeti-observed.md §4: a freshly queued OP_INSTANCE_CREATE, as luxid writes it.
QUEUED = {
    "id": 38,
    "ops": [{"input": {"OP_ID": "OP_INSTANCE_CREATE", "instance_name": "inst3.example.test"},
             "status": "queued", "result": None, "log": [], "priority": 0,
             "start_timestamp": None, "exec_timestamp": None, "end_timestamp": None}],
    "received_timestamp": [1795466693, 600116], "start_timestamp": None, "end_timestamp": None,
}

FINISHED_TEXT = json.dumps(FINISHED)


def _job(doc=None, **changes):
    doc = copy.deepcopy(FINISHED if doc is None else doc)
    doc.update(changes)
    return doc


def _op(**changes):
    op = copy.deepcopy(FINISHED["ops"][0])
    op.update(changes)
    return op


# --- valid files ---------------------------------------------------------------------------

def test_finished_job_from_the_spec():
    job = parse_job(FINISHED_TEXT, "queue/job-30")
    assert job.id == 30
    assert job.status == "success" and job.finalized
    assert job.received_timestamp == (1795465435, 799737)
    assert job.start_timestamp == (1795465436, 164813)
    assert job.end_timestamp == (1795465436, 779482)
    assert job.livelock == "/var/run/ganeti/livelocks/job_000030_1795465436"
    assert job.process_id == 15691
    (op,) = job.ops
    assert op.index == 0 and op.op_id == "OP_INSTANCE_STARTUP"
    assert op.input["instance_name"] == "inst2b.example.test"
    assert op.status == "success" and op.result is None and op.priority == 0
    assert (op.start_timestamp, op.exec_timestamp, op.end_timestamp) == (
        (1795465436, 164813), (1795465436, 174456), (1795465436, 779471))
    assert op.log == () and op.last_log_message is None


def test_queued_job_has_no_timestamps_yet():
    job = parse_job(json.dumps(QUEUED).encode(), "job-38")
    assert job.status == "queued" and not job.finalized
    assert job.start_timestamp is None and job.end_timestamp is None
    assert job.livelock is None and job.process_id is None
    assert job.ops[0].start_timestamp is job.ops[0].exec_timestamp is job.ops[0].end_timestamp is None


def test_haskell_omits_unset_keys():
    # luxid leaves out livelock/process_id and null timestamps rather than writing null.
    doc = {"id": 5, "ops": [{"input": {"OP_ID": "OP_TEST_DELAY"}, "status": "queued"}]}
    job = parse_job(json.dumps(doc), "job-5")
    assert job.received_timestamp is None and job.ops[0].log == () and job.ops[0].result is None


def test_log_entries_and_last_message():
    log = [[1, [1795465374, 246907], "message", "* disk 0, size 16M"],
           [2, [1795465375, 0], "message", "* creating instance disks..."]]
    job = parse_job(json.dumps(_job(ops=[_op(status="running", log=log)])), "job-30")
    op = job.ops[0]
    assert op.log[0] == (1, (1795465374, 246907), "message", "* disk 0, size 16M")
    assert op.log[1].serial == 2 and op.log[1].log_type == "message"
    assert op.last_log_message == "* creating instance disks..."


def test_log_message_need_not_be_a_string():
    # remote-import feedback carries a structure, not text.
    log = [[3, [1, 2], "remote-import", {"x509_ca": "...", "disks": [["h", 1, "m"]]}]]
    job = parse_job(json.dumps(_job(ops=[_op(log=log)])), "job-30")
    assert job.ops[0].last_log_message == {"x509_ca": "...", "disks": [["h", 1, "m"]]}


def test_error_result_is_kept_as_written():
    result = ["OpPrereqError", ["Instance 'x' not known", "unknown_entity"]]
    job = parse_job(json.dumps(_job(ops=[_op(status="error", result=result)])), "job-30")
    assert job.status == "error" and job.ops[0].result == result


def test_several_ops_keep_their_index():
    ops = [_op(), _op(status="running"), _op(status="queued")]
    job = parse_job(json.dumps(_job(ops=ops)), "job-30")
    assert [op.index for op in job.ops] == [0, 1, 2]
    assert job.status == "running"


def test_job_id_as_decimal_string_like_ganeti_restore():
    assert parse_job(json.dumps(_job(id="42")), "job-42").id == 42


def test_read_job(tmp_path):
    path = tmp_path / "job-30"
    path.write_text(FINISHED_TEXT)
    assert read_job(path) == parse_job(FINISHED_TEXT, str(path))


def test_read_job_leaves_a_vanished_file_to_the_caller(tmp_path):
    # Archived between the event and the read: the caller retries archive_path().
    with pytest.raises(FileNotFoundError):
        read_job(tmp_path / "job-30")


# --- status derivation ---------------------------------------------------------------------

@pytest.mark.parametrize("statuses, expected", [
    (["success"], "success"),
    (["success", "success", "success"], "success"),
    (["queued"], "queued"),
    (["success", "queued"], "queued"),
    (["waiting"], "waiting"),
    (["success", "waiting", "queued"], "waiting"),
    (["success", "running", "queued"], "running"),
    (["running", "waiting"], "waiting"),  # the last waiting/running op wins
    (["success", "error", "error"], "error"),
    (["error", "success"], "error"),
    (["waiting", "canceling"], "canceling"),
    (["canceled", "canceled"], "canceled"),
    (["canceling", "error"], "canceling"),  # the first canceling/canceled/error op decides
    (["canceled", "error"], "canceled"),
    (["queued", "error"], "error"),
])
def test_status_is_derived_as_ganeti_does(statuses, expected):
    assert calc_status(statuses) == expected
    ops = [_op(status=s) for s in statuses]
    assert parse_job(json.dumps(_job(ops=ops)), "job-30").status == expected


@given(st.lists(st.sampled_from(sorted(jobs.STATUSES)), min_size=1, max_size=8))
def test_status_invariants(statuses):
    status = calc_status(statuses)
    terminal = [s for s in statuses if s in ("canceling", "canceled", "error")]
    if terminal:
        assert status == terminal[0]
    elif all(s == "success" for s in statuses):
        assert status == "success"
    elif any(s in ("waiting", "running") for s in statuses):
        assert status == [s for s in statuses if s in ("waiting", "running")][-1]
    else:
        assert status == "queued"


# --- names and paths -----------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("job-7", 7), ("job-0", 0), ("job-1234567", 1234567),
    ("job-74e1ei1lz.new", None),  # Python job process temp file for job 7
    ("job-7-1-2.tmp", None),      # luxid temp file
    ("job-7-12171-85.tmp", None), ("job-23xh5av40z.new", None),
    ("job-", None), ("job-7\n", None), ("xjob-7", None), ("job-7x", None), ("job--7", None),
    ("job-\u0663", None),  # Arabic-Indic digit three: \d matches it, Ganeti never writes it
    ("serial", None), ("lock", None), ("version", None), ("archive", None),
])
def test_job_id_from_name(name, expected):
    assert job_id_from_name(name) == expected


def test_job_file_re_is_ganetis():
    assert jobs.JOB_FILE_RE.pattern == r"^job-(\d+)$"


@pytest.mark.parametrize("job_id, expected", [
    (7, "/q/archive/0/job-7"), (9999, "/q/archive/0/job-9999"),
    (10000, "/q/archive/1/job-10000"), (123456, "/q/archive/12/job-123456"),
])
def test_archive_path(job_id, expected):
    assert archive_path("/q", job_id) == expected


# --- malformed files -----------------------------------------------------------------------

def _bad(**changes):
    return json.dumps(_job(**changes))


def _bad_op(**changes):
    return _bad(ops=[_op(**changes)])


def _without(key, doc=FINISHED):
    doc = copy.deepcopy(doc)
    del doc[key]
    return json.dumps(doc)


def _op_without(key):
    op = _op()
    del op[key]
    return _bad(ops=[op])


MALFORMED = [
    ("", "empty file"),
    ("  \n", "empty file"),
    ("not json", "invalid JSON"),
    (FINISHED_TEXT[: len(FINISHED_TEXT) // 2], "invalid JSON (truncated?)"),
    (FINISHED_TEXT + "}", "invalid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    ("[" * 100000, "nested too deeply"),
    ("[]", "top level: expected object, got array"),
    ("null", "top level: expected object, got null"),
    ("{}", "ops: missing"),
    (_without("id"), "id: missing"),
    (_bad(id=True), "id: expected integer or string, got boolean"),
    (_bad(id=1.5), "id: expected integer or string, got number"),
    (_bad(id="12a"), "id: not a job id: '12a'"),
    (_bad(id=-1), "id: negative"),
    (_bad(ops={}), "ops: expected array, got object"),
    (_bad(ops=[]), "ops: empty"),
    (_bad(ops=[None]), "ops[0]: expected object, got null"),
    (_bad(ops=[_op(), "op"]), "ops[1]: expected object, got string"),
    (_op_without("input"), "ops[0].input: missing"),
    (_bad_op(input=[]), "ops[0].input: expected object, got array"),
    (_bad_op(input={"instance_name": "x"}), "ops[0].input.OP_ID: missing"),
    (_bad_op(input={"OP_ID": 3}), "ops[0].input.OP_ID: expected string, got integer"),
    (_op_without("status"), "ops[0].status: missing"),
    (_bad_op(status="foo"), "ops[0].status: unknown status 'foo'"),
    (_bad_op(status="cancelled"), "ops[0].status: unknown status 'cancelled'"),
    (_bad_op(status="SUCCESS"), "ops[0].status: unknown status 'SUCCESS'"),
    (_bad_op(status=1), "ops[0].status: expected string, got integer"),
    (_bad_op(status="x\ny"), "ops[0].status: unknown status 'x\\ny'"),
    (_bad_op(start_timestamp=1795465436), "ops[0].start_timestamp: expected array or null, got integer"),
    (_bad_op(exec_timestamp=[1]), "ops[0].exec_timestamp: expected [seconds, microseconds], got 1 items"),
    (_bad_op(end_timestamp=[1, 2, 3]), "ops[0].end_timestamp: expected [seconds, microseconds], got 3"),
    (_bad_op(end_timestamp=[1.5, 2]), "ops[0].end_timestamp[0]: expected integer, got number"),
    (_bad_op(end_timestamp=[1, "2"]), "ops[0].end_timestamp[1]: expected integer, got string"),
    (_bad_op(end_timestamp=[1, True]), "ops[0].end_timestamp[1]: expected integer, got boolean"),
    (_bad_op(end_timestamp=[1, 1000000]), "ops[0].end_timestamp: microseconds 1000000 out of range"),
    (_bad_op(end_timestamp=[1, -1]), "ops[0].end_timestamp: microseconds -1 out of range"),
    (_bad_op(end_timestamp=[-5, 0]), "ops[0].end_timestamp: negative seconds -5"),
    (_bad(received_timestamp={"sec": 1}), "received_timestamp: expected array or null, got object"),
    (_bad(end_timestamp=[1, 2, 3]), "end_timestamp: expected [seconds, microseconds]"),
    (_bad_op(log={}), "ops[0].log: expected array, got object"),
    (_bad_op(log=["x"]), "ops[0].log[0]: expected array, got string"),
    (_bad_op(log=[[1, [1, 2], "message"]]), "ops[0].log[0]: expected [serial, timestamp, type, message], got 3"),
    (_bad_op(log=[["1", [1, 2], "message", "m"]]), "ops[0].log[0][0]: expected integer, got string"),
    (_bad_op(log=[[1, None, "message", "m"]]), "ops[0].log[0][1]: expected array, got null"),
    (_bad_op(log=[[1, [1, 2e6], "message", "m"]]), "ops[0].log[0][1][1]: expected integer, got number"),
    (_bad_op(log=[[1, [1, 2], None, "m"]]), "ops[0].log[0][2]: expected string, got null"),
    (_bad_op(priority="high"), "ops[0].priority: expected integer or null, got string"),
    (_bad(livelock=1), "livelock: expected string or null, got integer"),
    (_bad(process_id="15691"), "process_id: expected integer or null, got string"),
]


@pytest.mark.parametrize("data, problem", MALFORMED, ids=[p for _, p in MALFORMED])
def test_malformed_job_file(data, problem):
    with pytest.raises(JobFileError) as info:
        parse_job(data, "/var/lib/ganeti/queue/job-30")
    message = str(info.value)
    assert message.startswith("/var/lib/ganeti/queue/job-30: ")
    assert problem in message
    assert "\n" not in message
    assert info.value.source == "/var/lib/ganeti/queue/job-30"


def test_read_job_names_the_file(tmp_path):
    path = tmp_path / "job-9"
    path.write_text('{"id": 9, "ops": [')
    with pytest.raises(JobFileError, match=rf"^{path}: invalid JSON"):
        read_job(path)


@pytest.mark.parametrize("sample", ["spec", "jobs/instance-create-v16.json"])
def test_every_truncation_of_a_valid_file_is_a_job_file_error(sample):
    if sample == "spec":
        data = FINISHED_TEXT.encode()
    elif (SAMPLES / sample).is_file():
        data = (SAMPLES / sample).read_bytes()
    else:
        pytest.skip(f"sample {SAMPLES / sample} absent")
    parse_job(data, "job-30")
    for cut in range(len(data.rstrip())):
        with pytest.raises(JobFileError):
            parse_job(data[:cut], "job-30")


# --- nothing but JobFileError escapes ------------------------------------------------------

def _parse_or_job_file_error(data):
    try:
        job = parse_job(data, "job-30")
    except JobFileError as err:
        assert "\n" not in str(err) and str(err).startswith("job-30: ")
        return None
    assert isinstance(job, jobs.Job)
    return job


@given(st.binary(max_size=512))
def test_random_bytes_give_only_job_file_error(data):
    _parse_or_job_file_error(data)


@given(st.integers(0, len(FINISHED_TEXT)), st.binary(max_size=32))
def test_truncated_and_garbled_file_gives_only_job_file_error(cut, tail):
    _parse_or_job_file_error(FINISHED_TEXT.encode()[:cut] + tail)




ALL_PATHS = [p for p in _paths(FINISHED) if p]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ALL_PATHS), JSON_VALUES, st.booleans())
def test_any_value_anywhere_gives_a_job_or_job_file_error(path, value, delete):
    _parse_or_job_file_error(json.dumps(mutated(FINISHED, path, value, delete)))


# --- real samples (tests/data/ganeti, captured from Ganeti 3.0.2 by capture.py) ------------

def _manifest_jobs():
    path = SAMPLES / "manifest.json"
    if not path.is_file():
        return []
    return json.loads(path.read_text())["jobs"]


def _versions(entry):
    paths = [SAMPLES / name for name in entry["files"]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"sample files absent: {', '.join(missing)}")
    return [read_job(p) for p in paths]


MANIFEST_JOBS = _manifest_jobs()


def test_samples_are_there():
    if not (SAMPLES / "manifest.json").is_file():
        pytest.skip(f"no captured Ganeti samples in {SAMPLES}")
    labels = {entry["label"] for entry in MANIFEST_JOBS}
    assert {"instance-create", "instance-startup", "instance-create-error-os-create"} <= labels


@pytest.mark.parametrize("entry", MANIFEST_JOBS, ids=lambda e: e["label"])
def test_sample_job_versions_follow_ganetis_lifecycle(entry):
    versions = _versions(entry)
    assert len(versions) == entry["versions"] == entry["moved_to_events"]
    assert {job.id for job in versions} == {entry["job_id"]}
    for job in versions:
        assert [op.op_id for op in job.ops] == entry["op_ids"]

    # README: queued (luxid submit), queued + livelock, queued (before fork),
    # waiting + process_id, running, one running per log line, final.
    statuses = [job.status for job in versions]
    assert statuses[:5] == ["queued", "queued", "queued", "waiting", "running"]
    assert set(statuses[5:-1]) <= {"running"}
    assert [op.status for op in versions[-1].ops] == entry["final_status"]
    first, last = versions[0], versions[-1]
    assert first.livelock is None and first.process_id is None
    assert first.received_timestamp is not None and first.start_timestamp is None
    assert versions[1].livelock is not None
    assert versions[3].process_id is not None and versions[3].start_timestamp is not None
    assert versions[4].ops[0].exec_timestamp is not None
    assert last.finalized and last.end_timestamp is not None
    assert last.ops[-1].end_timestamp is not None

    # Every version after the fifth adds exactly one log line until the final one.
    log_sizes = [len(job.ops[0].log) for job in versions]
    assert log_sizes[:5] == [0] * 5
    assert log_sizes[5:-1] == list(range(1, len(versions) - 5))
    assert log_sizes[-1] == log_sizes[-2]


def _entry(label):
    for entry in MANIFEST_JOBS:
        if entry["label"] == label:
            return entry
    pytest.skip(f"sample {label!r} absent from {SAMPLES / 'manifest.json'}")


def test_sample_instance_create():
    versions = _versions(_entry("instance-create"))
    last = versions[-1]
    op = last.ops[0]
    assert last.status == "success" and op.result == ["gnt1.example.test"]
    assert op.input["OP_ID"] == "OP_INSTANCE_CREATE"
    assert op.input["instance_name"] == "snf-sample-1.example.test"
    assert op.last_log_message == "* running the instance OS create scripts..."
    assert op.log[1].message == "* disk 0, size 16M"
    assert [entry.serial for entry in op.log] == list(range(1, len(op.log) + 1))
    assert versions[4].ops[0].last_log_message is None


def test_sample_instance_create_failing_in_the_os_script():
    last = _versions(_entry("instance-create-error-os-create"))[-1]
    (op,) = last.ops
    assert last.status == op.status == "error"
    assert op.result[0] == "OpExecError"
    assert "OS create script failed" in op.result[1][0]


def test_sample_instance_create_with_unknown_os_fails_without_log():
    versions = _versions(_entry("instance-create-error-bad-os"))
    assert [job.status for job in versions][-2:] == ["running", "error"]
    assert versions[-1].ops[0].log == ()
    assert versions[-1].ops[0].result[0] == "OpExecError"


def test_sample_instance_startup():
    last = _versions(_entry("instance-startup"))[-1]
    assert last.status == "success" and last.ops[0].result is None
    assert last.ops[0].input["instance_name"] == "snf-sample-1.example.test"
