#!/usr/bin/python3
"""Capture real Ganeti 3.0.2 samples for the parser unit tests into tests/data/ganeti/.

Run as root with Debian's python3 (it needs python3-pyinotify):

    scripts/ganeti-cluster up && tests/data/ganeti/capture.py

It runs a few operations on the project's one-node test cluster while a pyinotify watcher copies
/var/lib/ganeti/queue/job-N on every IN_MOVED_TO (luxid and the job processes never write job-N
in place: they write a temporary file and rename it), then copies config.data (host keys
REDACTED) and every ssconf_* file, and finally removes the instances and the network it made.
README.md in this directory says what each file is; this script rewrites jobs/, ssconf/,
config.data and manifest.json, not the README.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyinotify

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SCRIPT = REPO / "scripts" / "ganeti-cluster"
DATA_DIR = Path("/var/lib/ganeti")
QUEUE = DATA_DIR / "queue"
FLAG_DIR = Path("/run/snf-ganeti-test")

INST = "snf-sample-1.example.test"        # 2 NICs, one on snf-net-1 with an IP; tagged
FAIL_OS = "snf-sample-2.example.test"     # its OS create script fails (OpExecError)
BAD_OS = "snf-sample-3.example.test"      # unknown OS (OpExecError from the OS params check)
NET = "snf-net-1"
FINAL = {"success", "error", "canceled"}


class JobWatcher(pyinotify.ProcessEvent):
    """Keeps every distinct version (distinct inode) of every job-N file renamed into place."""

    def my_init(self):
        self.lock = threading.Lock()
        self.versions = {}     # job id -> [bytes, ...]
        self.events = {}       # job id -> number of IN_MOVED_TO events
        self._last_inode = {}

    def process_IN_MOVED_TO(self, event):
        match = re.fullmatch(r"job-(\d+)", event.name)
        if not match:
            return
        job_id = int(match.group(1))
        try:
            with open(event.pathname, "rb") as f:
                inode = os.fstat(f.fileno()).st_ino
                data = f.read()
        except FileNotFoundError:  # archived meanwhile
            return
        with self.lock:
            self.events[job_id] = self.events.get(job_id, 0) + 1
            # Reading lags behind the renames: if the file was replaced again before we opened
            # it, the next event finds the same inode; keep each inode (= version) once.
            if self._last_inode.get(job_id) == inode:
                return
            self._last_inode[job_id] = inode
            self.versions.setdefault(job_id, []).append(data)

    def finished(self, job_id):
        with self.lock:
            versions = self.versions.get(job_id)
        if not versions:
            return False
        ops = json.loads(versions[-1])["ops"]
        return all(op["status"] in FINAL for op in ops)


def gns(*argv, check=True):
    proc = subprocess.run([str(SCRIPT), "run", *argv], capture_output=True, text=True)
    if check and proc.returncode != 0:
        sys.exit(f"capture: {' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
    return proc


def cleanup():
    for name in (INST, FAIL_OS, BAD_OS):
        if gns("gnt-instance", "list", "--no-headers", "-o", "name", name, check=False).returncode == 0:
            gns("gnt-instance", "remove", "-f", "--shutdown-timeout=0", name)
    if NET in gns("gnt-network", "list", "--no-headers", "-o", "name").stdout.split():
        gns("gnt-network", "disconnect", NET, check=False)
        gns("gnt-network", "remove", NET)


def capture_once():
    """Run the operations once; returns the manifest, or None if a job version was missed."""
    for sub in ("jobs", "ssconf"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
        (HERE / sub).mkdir()
    watcher = JobWatcher()
    wm = pyinotify.WatchManager()
    notifier = pyinotify.ThreadedNotifier(wm, watcher)
    notifier.daemon = True
    notifier.start()
    wm.add_watch(str(QUEUE), pyinotify.IN_MOVED_TO)
    manifest = []

    def job(label, *argv, ok=True):
        with watcher.lock:
            before = set(watcher.versions)
        proc = gns(*argv, check=False)
        if (proc.returncode == 0) != ok:
            sys.exit(f"capture: {' '.join(argv)} exited {proc.returncode}:\n"
                     f"{proc.stdout}{proc.stderr}")
        deadline = time.time() + 10
        while True:
            with watcher.lock:
                new = sorted(set(watcher.versions) - before)
            if new and all(watcher.finished(j) for j in new):
                break
            if time.time() > deadline:
                sys.exit(f"capture: no finished job seen for {' '.join(argv)} (saw {new})")
            time.sleep(0.05)
        time.sleep(0.3)  # nothing should follow the final version; make sure
        if len(new) != 1:
            sys.exit(f"capture: {' '.join(argv)} made jobs {new}, expected one")
        job_id = new[0]
        with watcher.lock:
            versions = list(watcher.versions[job_id])
            events = watcher.events[job_id]
        files = []
        for k, data in enumerate(versions, 1):
            name = f"jobs/{label}-v{k}.json"
            (HERE / name).write_bytes(data)
            files.append(name)
        final = json.loads(versions[-1])
        manifest.append({
            "label": label, "command": " ".join(argv), "job_id": job_id,
            "op_ids": [op["input"]["OP_ID"] for op in final["ops"]],
            "final_status": [op["status"] for op in final["ops"]],
            "moved_to_events": events, "versions": len(versions), "files": files})
        print(f"capture: {label}: job {job_id}, {len(versions)} versions "
              f"({events} IN_MOVED_TO), {[op['status'] for op in final['ops']]}")

    try:
        # (c) network ops: a network with gateway and MAC prefix, connected to the default group
        job("network-add", "gnt-network", "add", "--network=192.0.2.0/24",
            "--gateway=192.0.2.1", "--mac-prefix=aa:00:01", NET)
        job("network-connect", "gnt-network", "connect",
            "--nic-parameters=mode=bridged,link=gntbr0", NET, "default")
        # (a) an instance add (-t file, 2 NICs, the second on the network with an IP), startup
        job("instance-create", "gnt-instance", "add", "-t", "file", "--disk", "0:size=16M",
            "-o", "snf-test+default", "-O", "marker=hello", "-H", "fake", "-B", "memory=128M",
            "--net", "0:mode=bridged,link=gntbr0", "--net", f"1:network={NET},ip=192.0.2.10",
            "--tags", "synnefo:network:0:protected", "--no-start", "--no-name-check",
            "--no-ip-check", "-n", "gnt1.example.test", INST)
        job("instance-startup", "gnt-instance", "startup", INST)
        # (c) a tag op
        job("tags-set", "gnt-instance", "add-tags", INST, "synnefo:network:1:protected",
            "snf:sample")
        # (b) failing jobs: unknown OS and an OS create script that fails (both OpExecError)
        job("instance-create-error-bad-os", "gnt-instance", "add", "-t", "file", "--disk",
            "0:size=16M", "-o", "no-such-os+default", "-H", "fake", "-B", "memory=128M",
            "--no-start", "--no-name-check", "--no-ip-check", "-n", "gnt1.example.test",
            BAD_OS, ok=False)
        flag = FLAG_DIR / "os-fail-create"
        flag.touch()
        try:
            job("instance-create-error-os-create", "gnt-instance", "add", "-t", "file",
                "--disk", "0:size=16M", "-o", "snf-test+default", "-H", "fake",
                "-B", "memory=128M", "--no-start", "--no-name-check", "--no-ip-check",
                "-n", "gnt1.example.test", FAIL_OS, ok=False)
        finally:
            flag.unlink()
        gns("gnt-instance", "remove", "-f", FAIL_OS)  # a failed OS create leaves the instance

        # (d) config.data with the network, the 2-NIC running instance and its tags
        raw = (DATA_DIR / "config.data").read_text()
        cluster = json.loads(raw)["cluster"]
        redacted = []
        for key in ("rsahostkeypub", "dsahostkeypub"):
            value = cluster.get(key)
            if value:
                raw = raw.replace(json.dumps(value), json.dumps("REDACTED"))
                redacted.append(f"cluster.{key}")
        if "PRIVATE KEY" in raw or "BEGIN CERTIFICATE" in raw:
            sys.exit("capture: config.data holds a key or certificate that is not redacted")
        (HERE / "config.data").write_text(raw)
        # (e) every ssconf file
        for path in sorted(DATA_DIR.glob("ssconf_*")):
            shutil.copyfile(path, HERE / "ssconf" / path.name)
    finally:
        notifier.stop()
        cleanup()
    if any(j["moved_to_events"] != j["versions"] for j in manifest):
        return None
    return {"ganeti_version": gns("gnt-cluster", "--version").stdout.strip(),
            "config_data_redacted": redacted, "jobs": manifest}


def main():
    if os.geteuid() != 0:
        sys.exit("capture: run as root")
    subprocess.run([str(SCRIPT), "up"], check=True)
    cleanup()
    for attempt in range(1, 6):
        manifest = capture_once()
        if manifest:
            break
        print(f"capture: attempt {attempt} missed a job version (read after the next rename); "
              "again")
    else:
        sys.exit("capture: every attempt missed a job version")
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"capture: done, {total} bytes in {HERE}")


if __name__ == "__main__":
    main()
