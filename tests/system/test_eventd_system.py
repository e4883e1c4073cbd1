"""eventd on the real one-node Ganeti cluster, read back the way Synnefo's frontend reads it.

``snf-ganeti eventd`` runs inside the cluster's UTS namespace (so the master check compares the
real FQDN with ssconf), publishes to the private broker, and a consumer binds durable queues
with the frontend's binding keys. Real gnt-* commands then drive the instance, network, cluster
and tag opcodes, and every message is checked against Ganeti's own job file and config.
"""

import base64
import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest
import yaml

from snf_ganeti import messages

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
RAPI = "https://127.0.0.1:5080"
RAPI_AUTH = ("snf-test", "snf-test-pass")  # scripts/ganeti-cluster's RAPI user
FRONTEND_KEYS = {  # queue suffix -> binding key, as snf-dispatcher binds (contract §1.3)
    "op": "ganeti.*.event.op",
    "network": "ganeti.*.event.network",
    "cluster": "ganeti.event.cluster",
    "heartbeat": "eventd.heartbeat",
    "progress": "ganeti.*.event.progress",
}
CONSUMER_REQUIRED = ("instance", "event_time", "type", "operation", "status", "jobId", "logmsg")
PATH_TO = ["queued", "waiting", "running"]


# -- the frontend's side: durable queues, drained with basic_get ----------------------------


@dataclass(frozen=True)
class Received:
    queue: str  # FRONTEND_KEYS key
    routing_key: str
    message_id: str
    body: dict


class FrontendQueues:
    """One durable queue per frontend binding key on the test's exchange."""

    def __init__(self, url, exchange):
        self.url, self.exchange = url, exchange
        tag = uuid.uuid4().hex[:8]
        self.queues = {name: f"snft-events-{name}-{tag}" for name in FRONTEND_KEYS}
        self.received = []
        with self._connection() as channel:
            channel.exchange_declare(exchange, exchange_type="topic", durable=True)
            channel.exchange_declare(f"{exchange}-dl", exchange_type="topic", durable=True)
            for name, queue in self.queues.items():
                channel.queue_declare(queue, durable=True, arguments={
                    "x-dead-letter-exchange": f"{exchange}-dl"})
                channel.queue_bind(queue, exchange, FRONTEND_KEYS[name])

    @contextlib.contextmanager
    def _connection(self):
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            yield connection.channel()
        finally:
            connection.close()

    def poll(self):
        with self._connection() as channel:
            for name, queue in self.queues.items():
                while True:
                    method, properties, body = channel.basic_get(queue, auto_ack=True)
                    if method is None:
                        break
                    self.received.append(Received(name, method.routing_key,
                                                  properties.message_id, json.loads(body)))

    def wait(self, predicate, timeout=60.0):
        """Poll until ``predicate(received)`` holds; the (de-duplicated) messages either way."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if predicate(self.unique()) or time.monotonic() > deadline:
                return self.unique()
            time.sleep(0.1)

    def unique(self):
        """Received messages in arrival order, a repeated message_id (a resend) once."""
        seen, out = set(), []
        for message in self.received:
            if message.message_id not in seen:
                seen.add(message.message_id)
                out.append(message)
        return out

    def delete(self):
        with self._connection() as channel:
            for queue in self.queues.values():
                channel.queue_delete(queue)
            channel.exchange_delete(f"{self.exchange}-dl")


# -- eventd inside the Ganeti UTS namespace -------------------------------------------------


class SystemEventd:
    """``snf-ganeti eventd`` as the node runs it, with a NOTIFY_SOCKET to see READY=1."""

    def __init__(self, cluster, tmp_path, amqp):
        self.cluster, self.tmp_path = cluster, tmp_path
        amqp_section = {"urls": list(amqp.urls), "exchange": amqp.exchange,
                        "spool_dir": amqp.spool_dir, "connect_timeout": amqp.connect_timeout,
                        "confirm_timeout": amqp.confirm_timeout, "max_backoff": amqp.max_backoff}
        self.config = tmp_path / "eventd.yaml"
        self.config.write_text(yaml.safe_dump({
            "amqp": amqp_section,
            "ganeti": {"data_dir": cluster.data_dir},
            # no node_name: the master check must use the namespace's real FQDN
            "eventd": {"state_dir": str(tmp_path / "eventd-state"), "heartbeat_interval": 0}}))
        self.log_path = tmp_path / "eventd.log"
        self.process = None

    def start(self):
        notify_path = str(self.tmp_path / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify_path)
        sock.settimeout(1.0)
        with open(self.log_path, "w") as log:
            self.process = self.cluster.popen(
                sys.executable, "-m", "snf_ganeti.cli", "--config", self.config, "eventd",
                env={"PYTHONPATH": str(REPO), "NOTIFY_SOCKET": notify_path},
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(REPO))
        deadline = time.monotonic() + 60
        try:
            while True:
                try:
                    if b"READY=1" in sock.recv(4096):
                        return
                except socket.timeout:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"eventd did not report READY=1:\n{self.log()}")
        finally:
            sock.close()

    def log(self):
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    def stop(self):
        """SIGTERM; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except Exception:
            self.process.kill()
            self.process.wait()
            raise


@pytest.fixture
def feed(running_broker, amqp_config):
    queues = FrontendQueues(running_broker.url, amqp_config.exchange)
    yield queues
    running_broker.start()
    queues.delete()


@pytest.fixture
def eventd(ganeti_cluster, tmp_path, amqp_config, feed):
    """eventd running (READY=1 seen) on the master; stopped, and checked to stop cleanly."""
    daemon = SystemEventd(ganeti_cluster, tmp_path, amqp_config)
    daemon.start()
    yield daemon
    status = daemon.stop()
    log = daemon.log()
    assert status == 0, f"eventd exited with {status}:\n{log}"
    # the master check used the namespace's FQDN, and nothing went wrong on the way
    assert f"eventd starting on {ganeti_cluster.node}," in log, log
    assert f"{ganeti_cluster.node} is now master" in log, log
    assert " ERROR " not in log and "Traceback" not in log, log


# -- driving Ganeti -------------------------------------------------------------------------


def job_id_of(proc):
    """The job id a gnt-* command printed first.

    ``--print-jobid`` prints it alone; the commands that take many instances (startup, reboot,
    shutdown, remove-tags...) ignore that option and say ``Waiting for job N for NAME ...``.
    """
    first = proc.stdout.splitlines()[0].strip() if proc.stdout.strip() else ""
    match = re.fullmatch(r"(\d+)|Waiting for job (\d+) for .*", first)
    assert match, proc.stdout
    return int(match.group(1) or match.group(2))


def rapi(method, path):
    request = urllib.request.Request(RAPI + path, method=method)
    request.add_header("Authorization",
                       "Basic " + base64.b64encode(":".join(RAPI_AUTH).encode()).decode())
    context = ssl._create_unverified_context()  # the cluster's self-signed rapi.pem
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        return json.load(response)


def job_file(cluster, job_id):
    for path in (Path(cluster.queue_dir) / f"job-{job_id}",
                 Path(cluster.queue_dir) / "archive" / str(job_id // 10000) / f"job-{job_id}"):
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            continue
    raise AssertionError(f"job {job_id}: no job file in the queue or its archive")


def instance_nic_facts(cluster, name):
    """Per NIC (mac, ip, network name) as ``gnt-instance list`` reports them."""
    def listed(fields):
        out = cluster.gnt("instance", "list", "--no-headers", "--separator=|", "-o",
                          ",".join(fields), name).stdout.strip()
        return out.split("|")

    (count,) = listed(["nic.count"])
    fields = [f"{field}/{i}" for i in range(int(count))
              for field in ("nic.mac", "nic.ip", "nic.network.name")]
    values = [None if v in ("", "-", "None") else v for v in listed(fields)]
    return [tuple(values[i:i + 3]) for i in range(0, len(values), 3)]


# -- what a frontend requires of the messages -------------------------------------------------


def job_messages(received, job_id):
    return [m for m in received if m.body.get("jobId") == job_id]


def final_seen(job_id, final):
    return lambda got: any(m.body.get("status") == final for m in job_messages(got, job_id))


def check_job_messages(cluster, got, job_id, *, queue, routing_key, type_name, operation,
                       statuses):
    """The messages of one single-op job: exactly ``statuses`` in order, all well-formed.

    Each has the right queue and routing key, validates against its schema, names the real
    cluster, and carries Synnefo's event_time for its status (contract §3.5, compared with
    Ganeti's job file). Returns the bodies.
    """
    mine = job_messages(got, job_id)
    assert [m.body["status"] for m in mine] == statuses, [m.body for m in mine]
    job = job_file(cluster, job_id)
    (op,) = job["ops"]
    assert op["input"]["OP_ID"] == operation
    expected_time = {"queued": job["received_timestamp"], "waiting": op["start_timestamp"],
                     "running": op["exec_timestamp"], "success": op["end_timestamp"],
                     "error": op["end_timestamp"]}
    for message in mine:
        body = message.body
        assert (message.queue, message.routing_key) == (queue, routing_key), message
        assert messages.validate(body).name == type_name
        assert body["type"] == type_name and body["operation"] == operation
        assert body["cluster"] == cluster.cluster_name
        assert "logmsg" in body and "result" in body
        assert body["event_time"] == expected_time[body["status"]], (body, job)
        assert message.message_id == f"{cluster.cluster_name}/job-{job_id}/op-0/{body['status']}"
    final = mine[-1].body
    assert final["result"] == op["result"]
    last_log = op["log"][-1][3] if op["log"] else None
    assert final["logmsg"] == last_log
    return [m.body for m in mine]


def expect_instance_op(cluster, feed, job_id, name, operation, final="success"):
    got = feed.wait(final_seen(job_id, final))
    bodies = check_job_messages(cluster, got, job_id, queue="op",
                                routing_key="ganeti.snf.event.op", type_name="ganeti-op-status",
                                operation=operation, statuses=PATH_TO + [final])
    for body in bodies:
        for key in CONSUMER_REQUIRED:
            assert key in body, (key, body)
        assert body["instance"] == name
    return bodies


def expect_network_op(cluster, feed, network, operation, job_id=None):
    """All statuses of the one ``operation`` job on ``network``; returns the bodies."""
    def mine(got):
        return [m for m in got if m.body.get("network") == network
                and m.body.get("operation") == operation]

    got = feed.wait(lambda got: any(m.body["status"] == "success" for m in mine(got)))
    jobs = {m.body["jobId"] for m in mine(got)}
    assert len(jobs) == 1, [m.body for m in mine(got)]
    (found,) = jobs
    if job_id is not None:
        assert found == job_id
    bodies = check_job_messages(cluster, got, found, queue="network",
                                routing_key="ganeti.snf.event.network",
                                type_name="ganeti-network-status", operation=operation,
                                statuses=PATH_TO + ["success"])
    for body in bodies:
        for key in ("network", "cluster", "event_time", "type", "operation", "status", "jobId",
                    "logmsg"):
            assert key in body, (key, body)
    return bodies


def assert_nics_match(cluster, name, nics, profiles):
    """``instance_nics`` agrees with Ganeti; ``profiles`` is the firewall per NIC (or None)."""
    facts = instance_nic_facts(cluster, name)
    assert len(nics) == len(facts), (nics, facts)
    for nic, (mac, ip, network), profile in zip(nics, facts, profiles):
        assert (nic["mac"], nic["ip"], nic["network"]) == (mac, ip, network), (nic, facts)
        assert nic.get("firewall") == profile, nic
        assert nic["mode"] == "bridged" and nic["link"] == cluster.bridge


# -- the tests --------------------------------------------------------------------------------


def subnet_for(salt):
    """A /24 for this test run's network (10/8, away from the cluster's 198.51.100.0/24)."""
    n = (os.getpid() * 7 + salt) % (128 * 256)
    return f"10.{64 + n // 256}.{n % 256}"


def test_instance_and_network_lifecycle(ganeti_cluster, ganeti_instance_name, eventd, feed):
    cluster, name = ganeti_cluster, ganeti_instance_name
    renamed = name.replace(".example.test", "-renamed.example.test")
    network = f"snf-net-{os.getpid()}1"
    prefix = subnet_for(1)
    network_added = network_connected = False
    try:
        # network add + connect
        job = job_id_of(cluster.gnt("network", "add", "--print-jobid", f"--network={prefix}.0/24",
                                    f"--gateway={prefix}.1", network))
        network_added = True
        add = expect_network_op(cluster, feed, network, "OP_NETWORK_ADD", job)
        assert add[-1]["job_fields"] == {"subnet": f"{prefix}.0/24", "gateway": f"{prefix}.1",
                                         "add_reserved_ips": None, "remove_reserved_ips": None,
                                         "group_name": None}
        cluster.gnt("network", "connect", "-N", f"mode=bridged,link={cluster.bridge}", network,
                    "default")
        network_connected = True
        connect = expect_network_op(cluster, feed, network, "OP_NETWORK_CONNECT")
        assert connect[-1]["job_fields"]["group_name"] == "default"

        # create: NIC 0 on the bridge (protected by tag), NIC 1 on the network with an IP
        ip = f"{prefix}.5"
        job = job_id_of(cluster.add_instance(
            name, "--print-jobid", "--net", f"0:mode=bridged,link={cluster.bridge}",
            "--net", f"1:network={network},ip={ip}", "--tags", "synnefo:network:0:protected"))
        create = expect_instance_op(cluster, feed, job, name, "OP_INSTANCE_CREATE")
        for body in create:
            assert body["tags"] == ["synnefo:network:0:protected"]
            assert set(body["job_fields"]) == {"nics", "disks", "hvparams", "beparams"}
            assert [n.get("network") for n in body["job_fields"]["nics"]] == [None, network]
        assert all("instance_nics" not in b for b in create[:-1])
        success = create[-1]
        assert_nics_match(cluster, name, success["instance_nics"], ["protected", None])
        assert [(n["ip"], n["network"]) for n in success["instance_nics"]] == [
            (None, None), (ip, network)]
        assert [d["size"] for d in success["instance_disks"]] == [16]
        assert success["instance_hvparams"]["cdrom_image_path"] == ""

        # start, reboot, stop
        job = job_id_of(cluster.gnt("instance", "startup", "--print-jobid", name))
        startup = expect_instance_op(cluster, feed, job, name, "OP_INSTANCE_STARTUP")
        assert startup[-1]["job_fields"] == {}
        assert_nics_match(cluster, name, startup[-1]["instance_nics"], ["protected", None])
        assert startup[-1]["instance_nics"] == success["instance_nics"]
        job = job_id_of(cluster.gnt("instance", "reboot", "--print-jobid", name))
        reboot = expect_instance_op(cluster, feed, job, name, "OP_INSTANCE_REBOOT")
        assert all("instance_nics" not in b for b in reboot)
        job = job_id_of(cluster.gnt("instance", "shutdown", "--print-jobid", name))
        expect_instance_op(cluster, feed, job, name, "OP_INSTANCE_SHUTDOWN")
        assert cluster.instance_status(name) == "ADMIN_down"

        # instance tags: only the final status, as OP_TAGS_SET / OP_TAGS_DEL
        for command, operation in (("add-tags", "OP_TAGS_SET"), ("remove-tags", "OP_TAGS_DEL")):
            job = job_id_of(cluster.gnt("instance", command, "--print-jobid", name,
                                        "cyclades:user:web"))
            got = feed.wait(final_seen(job, "success"))
            (tag,) = job_messages(got, job)
            assert (tag.queue, tag.routing_key) == ("op", "ganeti.snf.event.op")
            messages.validate(tag.body)
            assert {k: tag.body[k] for k in ("type", "instance", "operation", "status", "tags",
                                             "job_fields")} == {
                "type": "ganeti-op-status", "instance": name, "operation": operation,
                "status": "success", "tags": ["cyclades:user:web"],
                "job_fields": {"dry_run": None}}
            for key in CONSUMER_REQUIRED:
                assert key in tag.body
            assert tag.body["event_time"] == job_file(cluster, job)["ops"][0]["end_timestamp"]

        # modify: add a third NIC; lookup fields show it
        job = job_id_of(cluster.gnt("instance", "modify", "--print-jobid", "--net",
                                    f"add:mode=bridged,link={cluster.bridge}", name))
        modify = expect_instance_op(cluster, feed, job, name, "OP_INSTANCE_SET_PARAMS")
        for body in modify:
            assert body["job_fields"]["nics"][0][0] == "add"  # the frontend's quota action
        assert_nics_match(cluster, name, modify[-1]["instance_nics"], ["protected", None, None])
        assert modify[-1]["instance_nics"][:2] == success["instance_nics"]

        # rename (the message names the old instance), then remove the renamed one
        job = job_id_of(cluster.gnt("instance", "rename", "--print-jobid", "-f", "--no-name-check",
                                    "--no-ip-check", name, renamed))
        expect_instance_op(cluster, feed, job, name, "OP_INSTANCE_RENAME")
        assert cluster.instance_status(renamed) == "ADMIN_down"
        job = job_id_of(cluster.gnt("instance", "remove", "--print-jobid", "-f", renamed))
        expect_instance_op(cluster, feed, job, renamed, "OP_INSTANCE_REMOVE")
        assert cluster.instance_status(renamed) is None

        # network disconnect + remove
        cluster.gnt("network", "disconnect", network, "default")
        network_connected = False
        expect_network_op(cluster, feed, network, "OP_NETWORK_DISCONNECT")
        job = job_id_of(cluster.gnt("network", "remove", "--print-jobid", network))
        network_added = False
        expect_network_op(cluster, feed, network, "OP_NETWORK_REMOVE", job)
    finally:
        cluster.remove_instance(renamed)
        cluster.remove_instance(name)
        if network_connected:
            cluster.gnt("network", "disconnect", network, "default", check=False)
        if network_added:
            cluster.gnt("network", "remove", network, check=False)
    # nothing on the wrong queue: each queue got only its own message types
    wanted = {"op": {"ganeti-op-status"}, "network": {"ganeti-network-status"},
              "cluster": {"ganeti-cluster-status"}, "heartbeat": {"eventd-heartbeat"}}
    for message in feed.unique():
        assert message.body["type"] in wanted.get(message.queue, set()), message


def candidate_pool_size(cluster):
    for line in cluster.gnt("cluster", "info").stdout.splitlines():
        if line.strip().startswith("candidate pool size:"):
            return int(line.split(":", 1)[1])
    raise AssertionError("gnt-cluster info shows no candidate pool size")


def test_failed_create_cluster_params_and_heartbeat(ganeti_cluster, ganeti_instance_name, eventd,
                                                    feed):
    cluster, name = ganeti_cluster, ganeti_instance_name

    # a create that fails: the error carries the whole opcode input for a resubmit
    proc = cluster.gnt("instance", "add", "--print-jobid", "-t", "file", "--disk", "0:size=16M",
                       "-o", "no-such-os+default", "-H", "fake", "-n", cluster.node,
                       "--no-name-check", "--no-ip-check", "--no-start", name, check=False)
    assert proc.returncode != 0
    job = job_id_of(proc)
    error = expect_instance_op(cluster, feed, job, name, "OP_INSTANCE_CREATE", final="error")
    failed = error[-1]
    # Ganeti 3.0.2 reports a missing OS as ["OpExecError", ["OS Parameters validation failed
    # on node ...: Directory for OS no-such-os not found in search path"]]
    assert failed["result"][0].startswith("Op") and "no-such-os" in failed["result"][1][0]
    assert failed["job_fields"]["OP_ID"] == "OP_INSTANCE_CREATE"
    assert failed["job_fields"]["os_type"] == "no-such-os+default"
    assert failed["job_fields"]["instance_name"] == name
    assert "instance_nics" not in failed
    assert set(error[0]["job_fields"]) == {"nics", "disks", "hvparams", "beparams"}
    assert cluster.instance_status(name) is None

    # OP_CLUSTER_SET_PARAMS, setting the pool size it already has (nothing to restore)
    size = candidate_pool_size(cluster)
    try:
        job = job_id_of(cluster.gnt("cluster", "modify", "--print-jobid",
                                    f"--candidate-pool-size={size}"))
    finally:
        if candidate_pool_size(cluster) != size:
            cluster.gnt("cluster", "modify", f"--candidate-pool-size={size}")
    got = feed.wait(final_seen(job, "success"))
    check_job_messages(cluster, got, job, queue="cluster", routing_key="ganeti.event.cluster",
                       type_name="ganeti-cluster-status", operation="OP_CLUSTER_SET_PARAMS",
                       statuses=PATH_TO + ["success"])

    # the dispatcher's status check: a dry-run cluster tag through RAPI (gnt-cluster add-tags
    # has no --dry-run), answered with one eventd-heartbeat for its waiting status
    tag = f"snf:eventd:heartbeat:test:{os.getpid()}"
    try:
        job = rapi("PUT", f"/2/tags?tag={tag}&dry-run=1")
        op_input = job_file(cluster, job)["ops"][0]["input"]
        assert op_input["OP_ID"] == "OP_TAGS_SET" and op_input["dry_run"] is True
        got = feed.wait(lambda got: any(m.body.get("type") == "eventd-heartbeat"
                                        and m.body.get("jobId") == job for m in got), timeout=30)
        (beat,) = job_messages(got, job)
        assert (beat.queue, beat.routing_key) == ("heartbeat", "eventd.heartbeat")
        messages.validate(beat.body)
        assert beat.body["type"] == "eventd-heartbeat"
        assert beat.body["cluster"] == cluster.cluster_name
        assert (beat.body["operation"], beat.body["status"]) == ("OP_TAGS_SET", "waiting")
        # the job finishes (dry run: the tag is not set) and nothing more comes of it
        deadline = time.monotonic() + 30
        while job_file(cluster, job)["ops"][0]["status"] not in ("success", "error"):
            assert time.monotonic() < deadline, job_file(cluster, job)
            time.sleep(0.1)
        assert job_file(cluster, job)["ops"][0]["status"] == "success"
        time.sleep(1)
        assert job_messages(feed.wait(lambda got: False, timeout=0), job) == [beat]
        assert tag not in cluster.gnt("cluster", "list-tags").stdout.split()
    finally:
        if tag in cluster.gnt("cluster", "list-tags").stdout.split():
            cluster.gnt("cluster", "remove-tags", tag)
    # no timed heartbeats (heartbeat_interval 0): only answers to dry-run tag jobs
    beats = [m.body for m in feed.unique() if m.queue == "heartbeat"]
    assert beats and all(b.get("operation") == "OP_TAGS_SET" and "node" not in b
                         for b in beats), beats
