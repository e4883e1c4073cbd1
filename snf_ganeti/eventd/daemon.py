"""eventd's edge: inotify on the job queue, the master check, publishing, state.

One thread: pyinotify events, the publisher's sending, heartbeats and the
systemd watchdog all run from :meth:`Eventd.run`'s loop.
"""

import json
import logging
import os
import time

import pyinotify

from snf_ganeti.daemon_status import Housekeeping
from snf_ganeti import pathutils, sdnotify
from snf_ganeti.errors import ParseError, SnfGanetiError
from snf_ganeti.eventd import plan
from snf_ganeti.eventd.instances import ConfigDataCache
from snf_ganeti.eventd.state import PublishedState
from snf_ganeti.ganeti import jobs
from snf_ganeti.ganeti.ssconf import Ssconf, this_node
from snf_ganeti.logs import Throttle
from snf_ganeti.messages import heartbeat

log = logging.getLogger("snf-ganeti.eventd")

STATE_FILE = "published.json"
STATUS_FILE = "status.json"
# Job files: renamed into place (IN_MOVED_TO), or written in place by hand (IN_CLOSE_WRITE).
# Not IN_CREATE on the queue itself: every temporary file would cost an event.
_QUEUE_MASK = pyinotify.IN_MOVED_TO | pyinotify.IN_CLOSE_WRITE
_ARCHIVE_MASK = pyinotify.IN_MOVED_TO | pyinotify.IN_CREATE
# luxid hands out job ids under a lock but writes the job files after releasing it: for a
# moment a lower id can have no file while a higher one has.  A missing id counts as never
# coming once it has been missing this long (seconds), and is looked for again until then.
GAP_GRACE = 60.0
# How often the loop asks ssconf who the master is when no job changes: a node that became
# master publishes what it saw as a standby (StandbyLog) without waiting for a job to change.
MASTER_CHECK = 1.0


class Eventd:
    def __init__(self, config, publisher, clock=time.time):
        self.config = config
        self.publisher = publisher
        self.clock = clock
        self.queue_dir = config.ganeti.job_queue_dir
        self.ssconf = Ssconf(config.ganeti.data_dir)
        self.instances = ConfigDataCache(pathutils.ganeti_config_data(config.ganeti.data_dir))
        self.node = this_node(config.eventd.node_name)
        os.makedirs(config.eventd.state_dir, mode=0o750, exist_ok=True)
        self.state = PublishedState.load(os.path.join(config.eventd.state_dir, STATE_FILE),
                                         config.eventd.failover_replay)
        self.stats = {"node": self.node, "pid": os.getpid(), "master": None, "jobs_seen": 0,
                      "messages_published": 0, "last_event": None, "started": self.clock()}
        self._cluster = None
        self._batch = []      # messages planned since the last flush_batch()
        self._dirty = False   # state changed since it was last saved
        self._gaps = {}       # job id without a file -> when first seen so (clock)
        self._promoted = False  # became master since the state was last saved
        self._throttle = Throttle()  # an unreadable ssconf is logged once a minute

    # -- the master check and the cluster name --------------------------------

    def is_master(self):
        """Re-read ssconf every time: after a failover the new master takes over. A node
        that was a standby when the state was last saved and is master now publishes what
        it saw as a standby first (flush_batch, catch_up)."""
        try:
            master = self.ssconf.master_node() == self.node
        except SnfGanetiError as err:
            # The last answer holds: a passing read error must not turn the master's
            # finished jobs into jobs another node published.
            master = bool(self.stats["master"])
            if self._throttle("ssconf"):
                log.warning("cannot tell the master node (%s); taking this node as %s", err,
                            "master" if master else "not master")
        if master != self.stats["master"]:
            log.info("%s is %s master", self.node, "now" if master else "not")
            self.stats["master"] = master
        if master != self.state.was_master:
            self._promoted = master and self.state.was_master is False
            self.state.was_master = master
            self._dirty = True
        return master

    def cluster(self):
        if self._cluster is None:
            self._cluster = self.ssconf.cluster_name()
        return self._cluster

    # -- job files --------------------------------------------------------------

    def read(self, job_id, path):
        """The parsed job, from ``path`` or (archived meanwhile) the archive."""
        for candidate in (path, jobs.archive_path(self.queue_dir, job_id)):
            try:
                return jobs.read_job(candidate)
            except FileNotFoundError:
                continue
        return None

    def on_job_file(self, path):
        job_id = jobs.job_id_from_name(os.path.basename(path))
        if job_id is None or self.state.is_done(job_id):
            return
        try:
            job = self.read(job_id, path)
        except (ParseError, OSError) as err:  # retried when Ganeti rewrites the file
            log.error("skipping job file: %s", err)
            return
        if job is None:
            return
        self.stats["last_event"] = {"job": job_id, "status": job.status, "time": self.clock()}
        messages, record = self.plan(job)
        self._batch.extend(messages)
        if messages or job.finalized or record != self.state.published(job.id):
            self.state.record(job.id, record, finished=job.finalized)
            self._dirty = True

    def flush_batch(self):
        """Spool what the last events planned (one fsync), then save the state.

        In this order: a crash in between re-plans messages that are already
        spooled, which catch_up() skips by message id; never the reverse.
        """
        batch, self._batch = self._batch, []
        self.publish(self.with_replay(batch))
        if self._dirty:
            self._dirty = False
            self.state.save()

    def plan(self, job):
        if not self.is_master():
            self.state.standby.saw(job.id, self.clock())
            return [], tuple(op.status for op in job.ops)
        if not self.state.published(job.id):
            self.stats["jobs_seen"] += 1
        return plan.plan_job(job, self.state.published(job.id), self.cluster(),
                             self.lookup, self.clock())

    def with_replay(self, messages):
        """``messages``, after a promotion behind every message of the jobs seen changing as
        a standby, as if none had been published (under the old master's ids, oldest event
        first). The state records the replayed jobs; saved after the spool took them, so a
        crash in between replays them again."""
        if not self._promoted:
            return messages
        replayed = []
        for job_id in self.state.standby.take():
            try:
                job = self.read(job_id, jobs.queue_path(self.queue_dir, job_id))
            except (ParseError, OSError) as err:
                log.error("skipping job file: %s", err)
                continue
            if job is not None:
                planned, record = plan.plan_job(job, (), self.cluster(), self.lookup,
                                                self.clock())
                replayed += planned
                self.state.record(job.id, record, finished=job.finalized)
        self._promoted, self._dirty = False, True
        if replayed:
            log.info("now master: publishing again %d message(s) of jobs seen as a standby",
                     len(replayed))
        known = {m.message_id for m in replayed}
        return sorted(replayed, key=_event_order) + [m for m in messages
                                                     if m.message_id not in known]

    def lookup(self, name):
        try:
            return self.instances.lookup(name)
        except (ParseError, OSError) as err:
            log.error("no instance details for %s: %s", name, err)
            return None

    def publish(self, messages, skip_ids=frozenset()):
        batch = [(m.routing_key, m.body, m.message_id) for m in messages
                 if m.message_id not in skip_ids]
        self.publisher.publish_many(batch)
        self.stats["messages_published"] += len(batch)

    # -- start-up: catch up with what happened while we were down ---------------

    def job_files(self):
        """{job id: path} of every job file in the queue and its archive."""
        found = {}
        archive = os.path.join(self.queue_dir, "archive")
        for directory in [self.queue_dir] + sorted(
                os.path.join(archive, d) for d in pathutils.listdir(archive)):
            for name in pathutils.listdir(directory):
                job_id = jobs.job_id_from_name(name)
                if job_id is not None:
                    found[job_id] = os.path.join(directory, name)
        return found

    def catch_up(self):
        """Publish every transition missed while down, oldest event first.

        On the very first start (no state yet) finished jobs are history:
        they are marked done without a message unless ``eventd.replay_history``.
        """
        files = self.job_files()
        first_start = not self.state.existed
        self.settle_gaps(files)
        spooled = self.spooled_ids()
        pending, records = [], []
        history = first_start and not self.config.eventd.replay_history
        if history:     # Ganeti archives only finished jobs: no need to read them
            self.state.mark_done(self.archived(files))
        for job_id in sorted(files):
            if self.state.is_done(job_id):
                continue
            try:
                job = self.read(job_id, files[job_id])
            except (ParseError, OSError) as err:
                log.error("skipping job file: %s", err)
                continue
            if job is None:
                continue
            if history and job.finalized:
                records.append((job, tuple(op.status for op in job.ops)))
                continue
            messages, record = self.plan(job)
            pending.extend(messages)
            records.append((job, record))
        pending.sort(key=_event_order)
        self.publish(self.with_replay(pending), skip_ids=spooled)
        for job, record in records:
            self.state.record(job.id, record, finished=job.finalized)
        self.state.save()
        log.info("caught up: %d job files, %d messages", len(files), len(pending))

    def settle_gaps(self, files):
        """Mark done the ids that will never have a job file: those below an archived job
        (archived hours after it was handed out) at once, the others once missing from
        ``files`` (job_files()) for GAP_GRACE; until then the loop looks again."""
        now, top = self.clock(), max(self.archived(files), default=0)
        gaps = self.state.gaps(files)
        recent = {j: self._gaps.get(j, now) for j in gaps if j > top}
        self._gaps = {j: since for j, since in recent.items() if now - since < GAP_GRACE}
        settled = [j for j in gaps if j not in self._gaps]
        if settled:
            self.state.mark_done(settled)
            self._dirty = True

    def archived(self, files):
        """The ids in ``files`` (job_files()) whose job is in the archive."""
        return [j for j, path in files.items() if os.path.dirname(path) != self.queue_dir]

    def spooled_ids(self):
        """Message ids already spooled (a crash between spooling and saving state)."""
        spool = self.publisher.spool
        ids = set()
        for name in spool.entries():
            ids.update(envelope.message_id for envelope in spool.read(name) or ())
        return ids

    # -- the loop ---------------------------------------------------------------

    def heartbeat_due(self, last):
        interval = self.config.eventd.heartbeat_interval
        return interval > 0 and self.clock() - last >= interval

    def write_status(self):
        path = os.path.join(self.config.eventd.state_dir, STATUS_FILE)
        stats = {**self.stats, "updated": self.clock(), "pending_jobs": len(self.state.jobs),
                 "broker_blocked": self.publisher.blocked}
        with open(path + ".tmp", "w") as stream:
            json.dump(stats, stream)
        os.replace(path + ".tmp", path)

    def run(self, should_stop):
        watches = pyinotify.WatchManager()
        handler = _Handler(eventd=self)
        notifier = pyinotify.Notifier(watches, handler, timeout=100)
        if not os.path.isdir(self.queue_dir):
            raise SnfGanetiError(f"{self.queue_dir}: no such directory (ganeti.queue_dir: is "
                                 "Ganeti initialised on this node?)")
        # Watch before catching up, so nothing written meanwhile is missed.
        watches.add_watch(self.queue_dir, _QUEUE_MASK)
        archive = os.path.join(self.queue_dir, "archive")
        if os.path.isdir(archive):  # Ganeti creates it at init, its subdirectories on demand
            watches.add_watch(archive, _ARCHIVE_MASK, rec=True, auto_add=True)
        log.info("eventd starting on %s, watching %s", self.node, self.queue_dir)
        self.catch_up()
        sdnotify.notify("READY=1", f"STATUS=watching {self.queue_dir}")
        last_beat = last_gaps = last_master = 0.0
        housekeeping = Housekeeping(self.write_status)
        while not should_stop():
            if notifier.check_events():
                notifier.read_events()
                notifier.process_events()
                self.flush_batch()
            self.publisher.pump()
            now = self.clock()
            if self.heartbeat_due(last_beat):
                last_beat = now
                if self.is_master():
                    self.publish([heartbeat.build_timed(self.cluster(), self.node, now)])
            if self._gaps and now - last_gaps >= GAP_GRACE / 4:
                last_gaps = now
                self.settle_gaps(self.job_files())
                self.flush_batch()
            if abs(now - last_master) >= MASTER_CHECK:  # abs: a clock stepped back
                last_master = now
                self.is_master()
                self.flush_batch()
            housekeeping.tick(now)
        sdnotify.notify("STOPPING=1")
        notifier.stop()
        self.state.save()
        self.write_status()


def _event_order(message):
    return tuple(message.body.get("event_time") or (0, 0))


class _Handler(pyinotify.ProcessEvent):
    def my_init(self, eventd):  # pyinotify's constructor hook
        self.eventd = eventd

    def process_IN_MOVED_TO(self, event):
        self.eventd.on_job_file(event.pathname)

    def process_IN_CLOSE_WRITE(self, event):
        self.eventd.on_job_file(event.pathname)

    def process_IN_Q_OVERFLOW(self, event):
        log.warning("inotify queue overflowed; re-scanning the job queue")
        self.eventd.flush_batch()
        self.eventd.catch_up()

    def process_default(self, event):
        pass
