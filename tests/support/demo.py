"""The live demo driven by ``make demo``: the installed package's whole story, the feed printed.

Builds the .deb from this tree and installs it with apt, as an operator would; configures it
for a private RabbitMQ broker; runs its daemons (eventd, dhcpd) as their systemd units do;
prints the AMQP feed live (``snf-ganeti feed``) while Ganeti creates an instance from an image
with the package's OS definition, starts it under KVM (the guest gets its address from dhcpd,
its tap is set up by the package's NIC script, its NICs announced by the package's hooks), and
stops and removes it; then purges the package, leaving the machine as it found it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.fixtures.ganeti import GanetiCluster
from tests.fixtures.broker import Consumer
from tests.fixtures.netns import NetnsFactory
from tests.fixtures.osdefinition import ImageCache
from tests.support import package_story as story
from tests.support.rabbitmq import PrivateBroker

INSTANCE = "snf-demo-1.example.test"
EXCHANGE = "ganeti"


def say(text):
    print(f"\n=== {text}", flush=True)


def pump(process, prefix):
    for line in process.stdout:
        print(f"{prefix}{line}", end="", flush=True)


def main():
    work = tempfile.mkdtemp(prefix="snf-ganeti-demo-")
    cluster, netns = GanetiCluster(), NetnsFactory()
    if story.run("dpkg-query", "-W", story.PACKAGE, check=False).returncode == 0:
        raise SystemExit("demo: snf-ganeti is installed here already; the demo installs and "
                         "purges its own build")
    say("starting a private RabbitMQ broker")
    broker = PrivateBroker(os.path.join(work, "rabbitmq"))
    broker.start()
    daemons, feed = [], None
    try:
        say("building the .deb (dpkg-buildpackage) and installing it (apt-get install)")
        deb = story.build_deb(os.path.join(work, "deb"))
        story.apt_get("install", "--no-install-recommends", str(deb))
        story.check_installed()
        say("building a small Linux image (busybox root on ext4) for the image store")
        images = os.path.join(work, "images")
        os.makedirs(images)
        shutil.copy(ImageCache(os.path.join(work, "built")).get(), os.path.join(images,
                                                                              "debian.img"))
        story.configure([broker.url], EXCHANGE, cluster, images)
        say("snf-ganeti feed: what the frontend receives")
        feed = subprocess.Popen(["/usr/bin/snf-ganeti", "feed"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=story.installed_env())
        threading.Thread(target=pump, args=(feed, "  feed | "), daemon=True).start()
        daemons = [story.Daemon(name, Path(work)) for name in ("eventd", "dhcpd")]
        consumer = Consumer(broker.url, EXCHANGE)
        outside = story.outside_namespace(netns, cluster)
        say(f"Ganeti: network, instance {INSTANCE} from the image, KVM start, stop, remove")
        story.story(cluster, INSTANCE, consumer, outside)
        say("the story checked out: the guest got its IP from dhcpd, answered as its profile "
            "allows, and its host state was gone after stop")
        return 0
    finally:
        for daemon in daemons:
            daemon.stop()
        if feed is not None:
            feed.terminate()
        netns.cleanup()
        say("purging the package")
        story.apt_get("purge", story.PACKAGE, check=False)
        broker.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
