"""What eventd has published, persisted so a restart sends only what it missed.

Per unfinished job: the last published status of each opcode. Finished jobs
(every op's final status published) go to ``done``; the contiguous run of
done ids from the bottom collapses into ``watermark`` (every id up to it is
done), so the file stays small however long the archive grows. Also whether
this node was master, and what it saw change as a standby (``StandbyLog``):
a node found master after a restart as a standby still publishes that again.

The file is replaced by rename after every change (no fsync: after a machine
crash the same messages are planned again, under the same message ids).
"""

import collections
import json
import os

from snf_ganeti.errors import SnfGanetiError

VERSION = 1


class PublishedState:
    def __init__(self, path, failover_replay=0.0):
        self.path = path
        self.watermark = 0
        self.done = set()
        self.jobs = {}
        self.was_master = None  # as last saved; None before the first check
        self.standby = StandbyLog(failover_replay)
        self.existed = False

    @classmethod
    def load(cls, path, failover_replay=0.0):
        state = cls(path, failover_replay)
        try:
            with open(path, encoding="utf-8") as stream:
                data = json.load(stream)
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            state.watermark = int(data["watermark"])
            state.done = {int(j) for j in data["done"]}
            state.jobs = {int(j): tuple(s) for j, s in data["jobs"].items()}
            state.was_master = data.get("master")
            for job_id, when in data.get("standby", {}).items():
                state.standby.saw(int(job_id), float(when))
        except FileNotFoundError:
            return state
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise SnfGanetiError(f"{path}: eventd state is corrupt ({err}); move it away to "
                                 "start afresh (jobs then replay as on a first start)") from None
        state.existed = True
        return state

    def is_done(self, job_id):
        return job_id <= self.watermark or job_id in self.done

    def published(self, job_id):
        return self.jobs.get(job_id, ())

    def record(self, job_id, statuses, finished):
        if finished:
            self.jobs.pop(job_id, None)
            self.done.add(job_id)
            self._compact()
        else:
            self.jobs[job_id] = tuple(statuses)

    def gaps(self, present_ids):
        """Ids above the watermark, not done, without a job file and below the highest
        present one."""
        present = set(present_ids)
        return [j for j in range(self.watermark + 1, max(present, default=0))
                if j not in present and j not in self.done]

    def mark_done(self, job_ids):
        """Ids that will never have a job file (see the daemon's settle_gaps)."""
        self.done.update(job_ids)
        self._compact()

    def _compact(self):
        while self.watermark + 1 in self.done:
            self.watermark += 1
            self.done.discard(self.watermark)

    def save(self):
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as stream:
            json.dump({"version": VERSION, "watermark": self.watermark,
                       "done": sorted(self.done),
                       "jobs": {str(j): list(s) for j, s in sorted(self.jobs.items())},
                       "master": self.was_master,
                       "standby": {str(j): t for j, t in self.standby.items()}}, stream)
        os.replace(tmp, self.path)
        self.existed = True


class StandbyLog:
    """The jobs this node saw change while another node was master, as far back as ``window``
    seconds before the newest such change.

    A new master publishes them again: the old master may have read their last changes only
    after it stopped being master, or died before it could. The window is counted back from
    the newest change, not from now, so a failover long after a master's crash still covers
    the changes just before it. The same message ids make the repeats harmless."""

    def __init__(self, window):
        self.window = window
        self._seen = collections.OrderedDict()  # job id -> when it last changed, oldest first
        self._newest = float("-inf")

    def saw(self, job_id, when):
        if not self.window:
            return
        # Never back in time (a clock stepped back): the oldest entry must stay first.
        when = self._newest = max(when, self._newest)
        self._seen.pop(job_id, None)
        self._seen[job_id] = when
        while next(iter(self._seen.values())) < when - self.window:
            self._seen.popitem(last=False)

    def items(self):
        return list(self._seen.items())

    def take(self):
        """The job ids seen, lowest first; the log is then empty."""
        ids = sorted(self._seen)
        self._seen.clear()
        return ids
