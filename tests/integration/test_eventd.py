"""eventd against a real broker, on a job queue written the way Ganeti writes it."""

import json
import os
import signal
import socket
import time

import pytest

from snf_ganeti import messages
from tests.support.fake_ganeti import CLUSTER, FakeGanetiDir, sample_versions
from tests.support.procs import cli, reap, spawn, wait_until

pytestmark = pytest.mark.integration
NODE = "gnt1.example.test"


class EventdRunner:
    """Starts ``snf-ganeti eventd`` under a fake NOTIFY_SOCKET and waits for READY=1."""

    def __init__(self, tmp_path, amqp):
        self.tmp_path, self.amqp = tmp_path, amqp
        self.processes = []

    def config(self, ganeti_dir, state_dir, node=NODE, **extra):
        path = self.tmp_path / f"eventd-{len(self.processes)}-{time.monotonic_ns()}.yaml"
        path.write_text(ganeti_dir.config_yaml(self.amqp, state_dir, node=node, **extra))
        return str(path)

    def start(self, config_path, watchdog_usec=None):
        notify_path = str(self.tmp_path / f"notify-{time.monotonic_ns()}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify_path)
        sock.settimeout(30)
        extra = {"NOTIFY_SOCKET": notify_path}
        if watchdog_usec:
            extra["WATCHDOG_USEC"] = str(watchdog_usec)
        process = spawn("--config", config_path, "eventd", extra_env=extra)
        self.processes.append(process)
        self.notifications = []
        try:
            while not self.notifications or b"READY=1" not in self.notifications[-1]:
                self.notifications.append(sock.recv(4096))
            if watchdog_usec:
                self.notifications.append(sock.recv(4096))
        finally:
            sock.close()
        return process

    def stop(self, process, sig=signal.SIGTERM):
        process.send_signal(sig)
        process.wait(60)
        return process.stderr.read()

    def cleanup(self):
        reap(*self.processes)


@pytest.fixture
def eventd(tmp_path, amqp_config):
    runner = EventdRunner(tmp_path, amqp_config)
    yield runner
    runner.cleanup()


@pytest.fixture
def ganeti_dir(tmp_path):
    return FakeGanetiDir(tmp_path / "ganeti")


def unique(got):
    seen, out = set(), []
    for properties, body in got:
        if properties.message_id not in seen:
            seen.add(properties.message_id)
            out.append((properties.message_id, json.loads(body)))
    return out


def test_job_versions_become_one_message_per_status(eventd, ganeti_dir, consumer, tmp_path):
    process = eventd.start(eventd.config(ganeti_dir, tmp_path / "state"))
    for version in sample_versions("instance-create"):
        ganeti_dir.write_job(version)
    got = unique(consumer.drain(expect=4))
    assert [b["status"] for _, b in got] == ["queued", "waiting", "running", "success"]
    for message_id, body in got:
        messages.validate(body)
        assert body["cluster"] == CLUSTER and message_id.startswith(CLUSTER)
    assert got[-1][1]["instance_nics"][1]["ip"] == "192.0.2.10"
    time.sleep(0.5)
    assert consumer.drain() == []  # nothing more, nothing twice
    config = eventd.config(ganeti_dir, tmp_path / "state")
    for _ in range(50):  # eventd refreshes its status file every second
        status = json.loads(cli("--config", config, "status", "--json").stdout)["eventd"]
        if status["last_event"] and "success" in status["last_event"]:
            break
        time.sleep(0.1)
    assert status["running"] and status["master"] and status["jobs_seen"] == 1
    assert status["last_event"].startswith("job 28 success")
    eventd.stop(process)


def test_temporary_names_malformed_files_and_archive(eventd, ganeti_dir, consumer, tmp_path):
    process = eventd.start(eventd.config(ganeti_dir, tmp_path / "state"))
    versions = sample_versions("instance-startup")
    with open(os.path.join(ganeti_dir.queue, "job-74e1ei1lz.new"), "w") as stream:
        json.dump(versions[-1], stream)  # a temporary name, closed after writing: ignored
    with open(os.path.join(ganeti_dir.queue, "job-900"), "w") as stream:
        stream.write('{"id": 900, "ops": [')  # truncated, written in place
    ganeti_dir.write_job(versions[0], job_id=901)
    ganeti_dir.write_job(versions[-1], job_id=901)
    ganeti_dir.archive(901)
    got = unique(consumer.drain(expect=4))
    assert [(b["jobId"], b["status"]) for _, b in got] == [
        (901, "queued"), (901, "waiting"), (901, "running"), (901, "success")]
    ganeti_dir.write_job(versions[-1], job_id=900)  # the broken job is rewritten: now it counts
    assert [b["jobId"] for _, b in unique(consumer.drain(expect=4))] == [900] * 4
    log = eventd.stop(process)
    assert "job-900" in log and "skipping job file" in log


def test_missed_transitions_are_sent_after_restart_and_nothing_twice(eventd, ganeti_dir, consumer,
                                                                      tmp_path):
    config = eventd.config(ganeti_dir, tmp_path / "state")
    versions = sample_versions("instance-startup")
    process = eventd.start(config)
    ganeti_dir.write_job(versions[0], job_id=50)
    ganeti_dir.write_job(versions[0], job_id=51)
    assert [b["status"] for _, b in unique(consumer.drain(expect=2))] == ["queued", "queued"]
    eventd.stop(process)
    ganeti_dir.write_job(versions[-1], job_id=50)  # queued -> success while eventd is down
    ganeti_dir.write_job(versions[-1], job_id=52)  # a whole job while eventd is down
    ganeti_dir.archive(50)
    process = eventd.start(config)
    got = unique(consumer.drain(expect=7))
    assert sorted((b["jobId"], b["status"]) for _, b in got) == sorted(
        [(50, "waiting"), (50, "running"), (50, "success"),
         (52, "queued"), (52, "waiting"), (52, "running"), (52, "success")])
    assert [b["event_time"] for _, b in got] == sorted(b["event_time"] for _, b in got)
    time.sleep(0.5)
    assert consumer.drain() == []  # job 51's queued was confirmed before: not sent again
    eventd.stop(process)


def test_first_start_does_not_replay_history(eventd, ganeti_dir, consumer, tmp_path):
    versions = sample_versions("instance-startup")
    ganeti_dir.write_job(versions[-1], job_id=9)
    ganeti_dir.archive(9)
    with open(os.path.join(ganeti_dir.queue, "archive", "0", "job-9"), "w") as stream:
        stream.write("{not read: archived jobs are finished}")
    ganeti_dir.write_job(versions[-1], job_id=10)  # finished before eventd ever ran
    ganeti_dir.write_job(versions[0], job_id=11)   # still queued
    process = eventd.start(eventd.config(ganeti_dir, tmp_path / "state"))
    got = unique(consumer.drain(expect=1))
    time.sleep(0.5)
    got += unique(consumer.drain())
    assert [(b["jobId"], b["status"]) for _, b in got] == [(11, "queued")]
    assert "job-9" not in eventd.stop(process)
    # ids 1 to 8, below an archived job, will never come: the state stays one number
    state = json.loads((tmp_path / "state" / "published.json").read_text())
    assert state["watermark"] == 10 and state["done"] == []


def test_a_job_file_written_after_a_higher_ones_is_still_published(eventd, ganeti_dir,
                                                                   consumer, tmp_path):
    """luxid hands out job ids under a lock and writes the files after it: job 31's file can
    appear after job 32's, here across eventd's start (its catch-up sees the gap)."""
    versions = sample_versions("instance-create")
    ganeti_dir.write_job(versions[0], job_id=30)
    ganeti_dir.write_job(versions[0], job_id=32)
    process = eventd.start(eventd.config(ganeti_dir, tmp_path / "state"))
    assert sorted(b["jobId"] for _, b in unique(consumer.drain(expect=2))) == [30, 32]
    for version in versions:
        ganeti_dir.write_job(version, job_id=31)
    got = unique(consumer.drain(expect=4))
    assert [(b["jobId"], b["status"]) for _, b in got] == [
        (31, "queued"), (31, "waiting"), (31, "running"), (31, "success")]
    eventd.stop(process)


def test_a_master_that_cannot_read_ssconf_for_a_moment_still_publishes(eventd, ganeti_dir,
                                                                      consumer, tmp_path):
    process = eventd.start(eventd.config(ganeti_dir, tmp_path / "state"))
    ganeti_dir.write_job(sample_versions("instance-create")[0], job_id=40)
    assert [b["jobId"] for _, b in unique(consumer.drain(expect=1))] == [40]
    os.unlink(os.path.join(ganeti_dir.path, "ssconf_master_node"))  # mid-replacement, say
    for version in sample_versions("instance-create"):
        ganeti_dir.write_job(version, job_id=41)
    got = unique(consumer.drain(expect=4))
    assert [(b["jobId"], b["status"]) for _, b in got][-1] == (41, "success")
    stderr = eventd.stop(process)
    assert "cannot tell the master node" in stderr and "taking this node as master" in stderr


def test_only_the_master_publishes_and_failover_moves_it(eventd, tmp_path, consumer):
    old = FakeGanetiDir(tmp_path / "old-master", master=NODE)
    new = FakeGanetiDir(tmp_path / "candidate", master=NODE)
    versions = sample_versions("instance-startup")
    on_old = eventd.start(eventd.config(old, tmp_path / "s-old", node=NODE))
    on_new = eventd.start(eventd.config(new, tmp_path / "s-new", node="gnt2.example.test"))
    for ganeti_dir in (old, new):  # master candidates get the same job files
        for version in versions:
            ganeti_dir.write_job(version, job_id=70)
    got = unique(consumer.drain(expect=4))
    time.sleep(1)
    assert len(got) == 4 and consumer.drain() == []  # the candidate sent nothing
    first_ids = [message_id for message_id, _ in got]
    for ganeti_dir in (old, new):
        ganeti_dir.set_master("gnt2.example.test")
    # The new master sends again what it saw as a standby (eventd.failover_replay), under
    # the old master's ids, then what comes next; the old master sends nothing more.
    assert [i for i, _ in unique(consumer.drain(expect=4))] == first_ids
    for ganeti_dir in (old, new):
        for version in versions:
            ganeti_dir.write_job(version, job_id=71)
    got = unique(consumer.drain(expect=4))
    time.sleep(1)
    assert [b["jobId"] for _, b in got] == [71] * 4 and consumer.drain() == []
    eventd.stop(on_old)
    eventd.stop(on_new)


@pytest.mark.parametrize("restarted", [False, True], ids=["running", "restarted"])
def test_changes_a_stalled_master_missed_are_sent_by_the_new_master(eventd, tmp_path, consumer,
                                                                    restarted):
    # The old master reads the job's changes only after ssconf names another master, and
    # the new one saw them while still a standby: without the replay nobody sends them.
    # Restarted: the new master's eventd is stopped before the failover and started after
    # it; what it saw as a standby is in its state file.
    old = FakeGanetiDir(tmp_path / "old-master", master=NODE)
    new = FakeGanetiDir(tmp_path / "candidate", master=NODE)
    on_old = eventd.start(eventd.config(old, tmp_path / "s-old", node=NODE))
    new_config = eventd.config(new, tmp_path / "s-new", node="gnt2.example.test")
    on_new = eventd.start(new_config)
    on_old.send_signal(signal.SIGSTOP)
    try:
        for ganeti_dir in (old, new):
            for version in sample_versions("instance-startup"):
                ganeti_dir.write_job(version, job_id=72)
        assert wait_until(lambda: (eventd_status(new_config)["last_event"] or "").startswith(
            "job 72 success"))
        if restarted:
            eventd.stop(on_new)
        for ganeti_dir in (old, new):
            ganeti_dir.set_master("gnt2.example.test")
        if restarted:
            on_new = eventd.start(new_config)
    finally:
        on_old.send_signal(signal.SIGCONT)
    got = unique(consumer.drain(expect=4))
    time.sleep(1)
    assert [(b["jobId"], b["status"]) for _, b in got] == [
        (72, "queued"), (72, "waiting"), (72, "running"), (72, "success")]
    assert consumer.drain() == []
    eventd.stop(on_old)
    eventd.stop(on_new)


def burst(ganeti_dir, first, count):
    versions = sample_versions("instance-startup")
    for job_id in range(first, first + count):
        for version in versions:
            ganeti_dir.write_job(version, job_id=job_id)


def expected_ids(first, count):
    return {f"{CLUSTER}/job-{j}/op-0/{s}" for j in range(first, first + count)
            for s in ("queued", "waiting", "running", "success")}


def test_broker_stopped_during_a_burst_of_200_jobs(eventd, ganeti_dir, consumer, tmp_path,
                                                   running_broker):
    process = eventd.start(eventd.config(ganeti_dir, tmp_path / "state"))
    burst(ganeti_dir, 1000, 60)
    running_broker.stop()
    burst(ganeti_dir, 1060, 80)
    running_broker.start()
    burst(ganeti_dir, 1140, 60)
    got = consumer.drain(expect=800, timeout=90)
    ids = [p.message_id for p, _ in got]
    assert set(ids) == expected_ids(1000, 200)
    assert len(ids) - len(set(ids)) <= 512  # repeats only of unconfirmed ones, same id
    eventd.stop(process)


def eventd_status(config):
    return json.loads(cli("--config", config, "status", "--json").stdout)["eventd"]


def test_a_broker_that_blocks_publishing_is_shown_and_loses_nothing(eventd, ganeti_dir,
                                                                   consumer, tmp_path,
                                                                   running_broker):
    config = eventd.config(ganeti_dir, tmp_path / "state")
    process = eventd.start(config)
    with running_broker.memory_alarm():
        burst(ganeti_dir, 3000, 50)
        assert wait_until(lambda: eventd_status(config)["broker_blocked"] == "low on memory")
        burst(ganeti_dir, 3050, 50)
    assert wait_until(lambda: eventd_status(config)["broker_blocked"] is None)
    got = consumer.drain(expect=400, timeout=90)
    assert {p.message_id for p, _ in got} == expected_ids(3000, 100)
    eventd.stop(process)


def test_sigkilled_eventd_loses_nothing(eventd, ganeti_dir, consumer, tmp_path):
    config = eventd.config(ganeti_dir, tmp_path / "state")
    process = eventd.start(config)
    burst(ganeti_dir, 2000, 100)
    process.send_signal(signal.SIGKILL)
    process.wait()
    burst(ganeti_dir, 2100, 100)
    process = eventd.start(config)
    got = consumer.drain(expect=800, timeout=90)
    ids = [p.message_id for p, _ in got]
    assert set(ids) == expected_ids(2000, 200)
    assert len(ids) - len(set(ids)) <= 512  # repeats only of unconfirmed ones, same id
    eventd.stop(process)


def test_systemd_readiness_and_watchdog(eventd, ganeti_dir, tmp_path):
    process = eventd.start(eventd.config(ganeti_dir, tmp_path / "state"), watchdog_usec=400000)
    assert any(b"READY=1" in n for n in eventd.notifications)
    assert eventd.notifications[-1] == b"WATCHDOG=1"
    eventd.stop(process)
