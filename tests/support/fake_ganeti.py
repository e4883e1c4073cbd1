"""A Ganeti data directory without Ganeti: ssconf files, config.data and a job queue
written the way Ganeti writes it (temporary file, then rename), from the real samples."""

import copy
import json
import os
import shutil

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "ganeti")
CLUSTER = "gntcluster.example.test"


def sample_versions(label):
    with open(os.path.join(DATA, "manifest.json")) as stream:
        (entry,) = [j for j in json.load(stream)["jobs"] if j["label"] == label]
    versions = []
    for name in entry["files"]:
        with open(os.path.join(DATA, name)) as stream:
            versions.append(json.load(stream))
    return versions


class FakeGanetiDir:
    def __init__(self, path, master="gnt1.example.test"):
        self.path = str(path)
        self.queue = os.path.join(self.path, "queue")
        os.makedirs(os.path.join(self.queue, "archive"), exist_ok=True)
        for name in os.listdir(os.path.join(DATA, "ssconf")):
            shutil.copy(os.path.join(DATA, "ssconf", name), self.path)
        shutil.copy(os.path.join(DATA, "config.data"), self.path)
        self.set_master(master)
        self._tmp = 0

    def set_master(self, node):
        self.write_file("ssconf_master_node", node + "\n")

    def write_file(self, name, text):
        target = os.path.join(self.path, name)
        with open(target + ".tmp", "w") as stream:
            stream.write(text)
        os.replace(target + ".tmp", target)

    def write_job(self, version, job_id=None):
        """Write one job version as Ganeti's Python writer does (``job-N<rand>.new``, rename)."""
        doc = copy.deepcopy(version)
        if job_id is not None:
            doc["id"] = job_id
        self._tmp += 1
        tmp = os.path.join(self.queue, f"job-{doc['id']}{self._tmp:08x}.new")
        with open(tmp, "w") as stream:
            json.dump(doc, stream)
        os.rename(tmp, os.path.join(self.queue, f"job-{doc['id']}"))

    def archive(self, job_id):
        directory = os.path.join(self.queue, "archive", str(job_id // 10000))
        os.makedirs(directory, exist_ok=True)
        os.rename(os.path.join(self.queue, f"job-{job_id}"), os.path.join(directory, f"job-{job_id}"))

    def config_yaml(self, amqp, state_dir, node="gnt1.example.test", heartbeat_interval=0):
        import dataclasses
        import yaml
        amqp_section = dataclasses.asdict(amqp)
        amqp_section["urls"] = list(amqp_section["urls"])
        return yaml.safe_dump({
            "amqp": amqp_section,
            "ganeti": {"data_dir": self.path},
            "eventd": {"state_dir": str(state_dir), "node_name": node,
                       "heartbeat_interval": heartbeat_interval}})
