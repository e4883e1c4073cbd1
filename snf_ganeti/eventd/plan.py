"""From a job file to the messages Synnefo's frontend expects: the pure core of eventd.

``plan_job`` compares a parsed job with what was already published for it
and returns the messages for every opcode status not yet published, in
order, plus the new per-op record. A status the job passed through while
nobody was looking (eventd down, or versions renamed over before they could
be read) is recovered from its timestamp, so a job seen first as ``success``
still yields queued, waiting, running and success, once each.
"""

from dataclasses import dataclass

from snf_ganeti.ganeti import jobs
from snf_ganeti.messages import cluster_status, heartbeat, network_status, op_status
from snf_ganeti.messages.common import OpEvent

# Position on Ganeti's op path (Types.hs OpStatus order); the three final ones tie.
RANK = {jobs.QUEUED: 0, jobs.WAITING: 1, jobs.CANCELING: 2, jobs.RUNNING: 3,
        jobs.CANCELED: 4, jobs.SUCCESS: 4, jobs.ERROR: 4}
HEARTBEAT_TAG = "snf:eventd:heartbeat"
_LOOKUP_ON = {"OP_INSTANCE_CREATE": {jobs.SUCCESS}, "OP_INSTANCE_STARTUP": {jobs.SUCCESS},
              "OP_INSTANCE_SET_PARAMS": jobs.FINALIZED, "OP_INSTANCE_GROW_DISK": jobs.FINALIZED}
_PARAM_JOB_FIELDS = ("nics", "disks", "hvparams", "beparams")


@dataclass(frozen=True)
class InstanceInfo:
    """What the frontend reconciles from Ganeti's config (the lookup fields)."""

    nics: list
    disks: list
    hvparams: dict


def passed_statuses(op):
    """The statuses ``op`` went through, oldest first, as far as its file shows."""
    path = [jobs.QUEUED]
    if op.start_timestamp is not None and op.status != jobs.QUEUED:
        path.append(jobs.WAITING)
    if op.status == jobs.CANCELING:
        path.append(jobs.CANCELING)
    if op.exec_timestamp is not None and RANK[op.status] >= RANK[jobs.RUNNING] \
            and op.status != jobs.CANCELED:
        path.append(jobs.RUNNING)
    if op.status not in path:
        path.append(op.status)
    return path


def event_time(job, op, status, now):
    """Synnefo's choice of timestamp per status (eventd.py get_time_from_status).

    Never null: the consumer drops a message without a valid event_time.
    """
    if status == jobs.QUEUED:
        chosen = job.received_timestamp
    elif status in (jobs.WAITING, jobs.CANCELING):
        chosen = op.start_timestamp or job.end_timestamp
    elif status == jobs.RUNNING:
        chosen = op.exec_timestamp or job.end_timestamp
    else:
        chosen = op.end_timestamp or job.end_timestamp
    chosen = chosen or op.exec_timestamp or op.start_timestamp or job.received_timestamp
    if chosen is None:
        sec = int(now)
        chosen = (sec, int((now - sec) * 1e6))
    return tuple(chosen)


def op_events(job, op, last_published, now):
    """OpEvents for the statuses of ``op`` after ``last_published`` (None: nothing yet)."""
    floor = -1 if last_published is None else RANK[last_published]
    events = []
    for status in passed_statuses(op):
        if RANK[status] <= floor:
            continue
        current = status == op.status
        events.append(OpEvent(
            job_id=job.id, op_index=op.index, operation=op.op_id, status=status,
            event_time=event_time(job, op, status, now),
            logmsg=op.last_log_message if current else None,
            result=op.result if current else None))
    return events


def plan_job(job, published, cluster, lookup, now):
    """Messages for everything in ``job`` not yet published.

    ``published`` is a tuple with the last published status per op (None for
    none); ``lookup(instance_name)`` returns an InstanceInfo or None. Returns
    (messages, new published tuple).
    """
    published = tuple(published) + (None,) * (len(job.ops) - len(published))
    messages, record = [], list(published)
    for op in job.ops:
        for event in op_events(job, op, published[op.index], now):
            message = message_for(op, event, cluster, lookup)
            if message is not None:
                messages.append(message)
        last = published[op.index]
        if last is None or RANK[op.status] > RANK[last]:  # a stale re-read never goes back
            record[op.index] = op.status
    return messages, tuple(record)


def message_for(op, event, cluster, lookup):
    """The message for one opcode status, or None when the frontend wants none."""
    kind = op.op_id.split("_")[1] if op.op_id.count("_") >= 2 else ""
    if kind == "INSTANCE":
        return _instance_message(op, event, cluster, lookup)
    if kind == "NETWORK":
        name = op.input.get("network_name")
        return network_status.build(event, cluster, name, op.input) if _name(name) else None
    if op.op_id == "OP_CLUSTER_SET_PARAMS":
        return cluster_status.build(event, cluster)
    if kind == "TAGS":
        return _tags_message(op, event, cluster)
    return None


def instance_name(op_input):
    """``instance_name``, else the only element of ``instances`` (OP_INSTANCE_QUERY_DATA)."""
    name = op_input.get("instance_name")
    if _name(name):
        return name
    many = op_input.get("instances")
    if isinstance(many, list) and len(many) == 1 and _name(many[0]):
        return many[0]
    return None


def _name(value):
    return isinstance(value, str) and value != ""


def _instance_message(op, event, cluster, lookup):
    name = instance_name(op.input)
    if name is None:
        return None
    if op.op_id == "OP_INSTANCE_CREATE" and event.status == jobs.ERROR:
        job_fields = dict(op.input)  # the frontend resubmits it on temporary shortage
    elif op.op_id in ("OP_INSTANCE_CREATE", "OP_INSTANCE_SET_PARAMS"):
        job_fields = {key: op.input.get(key) for key in _PARAM_JOB_FIELDS}
    else:
        job_fields = {}
    tags = op.input.get("tags")
    info = lookup(name) if event.status in _LOOKUP_ON.get(op.op_id, ()) else None
    return op_status.build(
        event, cluster, name, job_fields, tags if isinstance(tags, list) else [],
        instance_nics=info.nics if info else None, instance_disks=info.disks if info else None,
        instance_hvparams=info.hvparams if info else None)


def _tags_message(op, event, cluster):
    kind, tags = op.input.get("kind"), op.input.get("tags")
    tags = tags if isinstance(tags, list) else []
    if kind == "instance" and event.status in jobs.FINALIZED and _name(op.input.get("name")):
        return op_status.build(event, cluster, op.input["name"],
                               {"dry_run": op.input.get("dry_run") or None}, tags)
    if (kind == "cluster" and op.op_id == "OP_TAGS_SET" and event.status == jobs.WAITING
            and op.input.get("dry_run") and tags and str(tags[0]).startswith(HEARTBEAT_TAG)):
        return heartbeat.build_for_op(event, cluster)
    return None
