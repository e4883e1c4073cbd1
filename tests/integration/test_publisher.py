"""The publisher against a real broker: confirms, restarts, crashes, short-lived writers."""

import dataclasses
import json
import signal
import subprocess
import time

import pika
import pytest

from snf_ganeti.config import AmqpConfig
from snf_ganeti.publisher import ENTRY_MAX, Publisher, _Remover, envelope_for, publish_once
from snf_ganeti.spool import Spool
from tests.support.procs import cli, reap, spawn, wait_line, wait_until

pytestmark = pytest.mark.integration


def ids_in_first_seen_order(got):
    seen, ordered = set(), []
    for properties, _ in got:
        if properties.message_id not in seen:
            seen.add(properties.message_id)
            ordered.append(properties.message_id)
    return ordered


def test_publish_properties_and_durable_topic_exchange(amqp_config, consumer, running_broker):
    publisher = Publisher(amqp_config)
    message_id = publisher.publish("ganeti.snf.event.op", {"type": "x", "n": 1})
    assert publisher.flush(10)
    publisher.close()
    ((properties, body),) = consumer.drain(expect=1)
    assert json.loads(body) == {"type": "x", "n": 1}
    assert properties.delivery_mode == 2
    assert properties.content_type == "application/json"
    assert properties.message_id == message_id
    assert publisher.spool.entries() == []
    connection = pika.BlockingConnection(pika.URLParameters(running_broker.url))
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:  # declared durable + topic
        channel.exchange_declare(amqp_config.exchange, exchange_type="topic", durable=False)
    assert err.value.reply_code == 406
    connection.close()


def test_each_wait_ends_when_what_it_waits_for_arrives(amqp_config, consumer):
    """pika ends a wait early only for its own events, not for the confirms our callbacks
    take: without a wake-up, confirm.select's wait (up to connect_timeout) and every pump
    ran their whole limit. Here both are a minute; 200 messages mean many waits, each
    ended by a confirm."""
    publisher = Publisher(dataclasses.replace(amqp_config, connect_timeout=60.0))
    started = time.monotonic()
    publisher.publish_many([("ganeti.snf.event.op", {"n": n}, None) for n in range(200)])
    while publisher.confirmed < 200 and time.monotonic() - started < 30.0:
        publisher.pump(wait=60.0)
    assert time.monotonic() - started < 30.0  # not one wait ran out (liveness, not speed)
    publisher.close()
    assert len(consumer.drain(expect=200)) == 200


def test_removals_on_a_stalled_disk_are_waited_for_only_so_long(freezable_dir):
    directory, freeze = freezable_dir
    spool = Spool(directory)
    name = spool.put([envelope_for("a.b", {"n": 1})])
    remover = _Remover(spool)
    freeze()
    try:
        remover.remove(name)
        assert remover.wait(timeout=0.5) is False
    finally:
        freeze(False)
    assert remover.wait(timeout=30) is True and spool.entries() == []


def test_a_confirmed_entry_that_cannot_be_removed_is_not_waited_for(tmp_path, caplog):
    """An immutable spool directory (a real EPERM, even for root): the remover logs it, goes
    on with the next entry, and keeps the name pending so it is not sent again."""
    spool = Spool(str(tmp_path / "spool"))
    names = [spool.put([envelope_for("a.b", {"n": n})]) for n in range(2)]
    remover = _Remover(spool)
    subprocess.run(["chattr", "+i", spool.directory], check=True)
    try:
        for name in names:
            remover.remove(name)
            remover.wait()
    finally:
        subprocess.run(["chattr", "-i", spool.directory], check=True)
    assert remover.pending == set(names) and spool.entries() == names
    assert f"cannot remove confirmed spool entry {names[1]}: Operation not permitted" in caplog.text
    remover.remove(names[0])
    remover.wait()
    assert spool.entries() == names[1:] and remover.pending == {names[1]}


def test_a_big_batch_is_spooled_in_entries_the_window_can_take(amqp_config, consumer):
    ids = spool_unsent(amqp_config, [("ganeti.snf.event.x", {"n": n}, f"b{n}")
                                     for n in range(2 * ENTRY_MAX + 3)])
    spool = Spool(amqp_config.spool_dir)
    assert [len(spool.read(name)) for name in spool.entries()] == [ENTRY_MAX, ENTRY_MAX, 3]
    publisher = Publisher(amqp_config)
    assert publisher.flush(30)
    publisher.close()
    assert ids_in_first_seen_order(consumer.drain(expect=len(ids))) == ids


@pytest.mark.parametrize("hard", [False, True], ids=["broker-stopped", "broker-killed"])
def test_broker_restart_during_1000_messages_loses_nothing(amqp_config, consumer, running_broker,
                                                           hard):
    writer = spawn(amqp_config.spool_dir, running_broker.url, amqp_config.exchange, 0, 1000,
                   0.004, 90, module="tests.support.publish_many")
    try:
        wait_line(writer.stdout, lambda line: line.strip() == "published 250")
        running_broker.stop(hard=hard)
        wait_line(writer.stdout, lambda line: line.strip() == "published 400")  # publishing goes on
        running_broker.start()
        writer.stdout.read()
        assert writer.wait(120) == 0, writer.stderr.read()
    finally:
        reap(writer)
    got = consumer.drain(expect=1000)
    assert ids_in_first_seen_order(got) == [f"m{n}" for n in range(1000)]


def test_sigkilled_publisher_loses_nothing(amqp_config, consumer, running_broker):
    args = (amqp_config.spool_dir, running_broker.url, amqp_config.exchange)
    writer = spawn(*args, 0, 1000, 0.002, 30, module="tests.support.publish_many")
    try:
        line = wait_line(writer.stdout, lambda line: line.strip() == "published 300")
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        last = 300 + sum(1 for line in writer.stdout if line.startswith("published"))
    finally:
        reap(writer)
    assert line
    restarted = spawn(*args, 5000, 100, 0, 60, module="tests.support.publish_many")
    try:
        assert restarted.wait(120) == 0, restarted.stderr.read()
    finally:
        reap(restarted)
    ids = ids_in_first_seen_order(consumer.drain(expect=last + 1 + 100))
    before = [i for i in ids if int(i[1:]) < 5000]
    assert before[:last + 1] == [f"m{n}" for n in range(last + 1)]  # every returned publish
    assert ids[-100:] == [f"m{n}" for n in range(5000, 5100)]


def test_short_lived_processes_while_broker_down_deliver_later(amqp_config, consumer, config_file,
                                                               running_broker):
    running_broker.stop()
    writers = [spawn(amqp_config.spool_dir, running_broker.url, amqp_config.exchange,
                     1000 * n, 5, 0, 0.5, module="tests.support.publish_many") for n in range(20)]
    try:
        codes = [w.wait(60) for w in writers]
    finally:
        reap(*writers)
    assert codes == [3] * 20  # each exited with its messages still spooled
    relay = spawn("--config", config_file, "spool", "flush", "--follow")
    try:
        running_broker.start()
        got = consumer.drain(expect=100, timeout=60)
    finally:
        relay.send_signal(signal.SIGINT)
        reap(relay)
    ids = ids_in_first_seen_order(got)
    assert sorted(ids) == sorted(f"m{1000 * n + k}" for n in range(20) for k in range(5))
    for n in range(20):  # each process's own messages stay in order
        mine = [i for i in ids if int(i[1:]) // 1000 == n]
        assert mine == [f"m{1000 * n + k}" for k in range(5)]


def spool_unsent(amqp_config, messages):
    """Spool ``messages`` as a process that cannot reach the broker would; their ids."""
    unreachable = dataclasses.replace(amqp_config, urls=("amqp://guest:guest@127.0.0.1:1/",))
    publisher = Publisher(unreachable)
    ids = publisher.publish_many(messages)
    publisher.close()
    return ids


@pytest.mark.parametrize("backlog", [0, 600], ids=["alone", "after-24MB-backlog"])
def test_a_hook_returns_within_its_timeout_while_the_broker_blocks_publishing(
        amqp_config, consumer, running_broker, backlog):
    # A blocked broker reads nothing more from the connection, not even Connection.Close:
    # a closing handshake, or a backlog written into full socket buffers, would keep the
    # hook until pika's blocked-connection timeout (3 x confirm_timeout = 15 s here),
    # holding up the Ganeti job that ran it.
    ids = spool_unsent(amqp_config, [("ganeti.snf.event.x", {"pad": "x" * 40000}, f"b{n}")
                                     for n in range(backlog)])
    with running_broker.memory_alarm():
        started = time.monotonic()
        ids.append(publish_once(amqp_config, "ganeti.snf.event.x", {"n": 1}))
        took = time.monotonic() - started
        spool = Spool(amqp_config.spool_dir)
        assert sum(len(spool.read(name)) for name in spool.entries()) == len(ids)
    assert took < 2 * amqp_config.confirm_timeout, took  # was 3 x, 6 x behind the backlog
    publisher = Publisher(amqp_config)
    assert publisher.flush(60)
    publisher.close()
    assert ids_in_first_seen_order(consumer.drain(expect=len(ids))) == ids


def test_a_blocked_broker_gets_nothing_more_until_it_unblocks(amqp_config, consumer,
                                                             running_broker, caplog):
    publisher = Publisher(amqp_config)
    first = publisher.publish("ganeti.snf.event.x", {"n": 0})
    assert publisher.flush(10)
    with running_broker.memory_alarm():
        # The broker says it blocks a connection only once that connection publishes.
        ids = publisher.publish_many([("ganeti.snf.event.x", {"n": n}, None) for n in range(1, 4)])
        assert wait_until(lambda: publisher.pump(wait=0.1) and publisher.blocked)
        assert publisher.blocked == "low on memory"
        sent = publisher.sent
        ids += publisher.publish_many([("ganeti.snf.event.x", {"n": n}, None) for n in range(4, 9)])
        for _ in range(5):
            publisher.pump(wait=0.1)
        assert publisher.sent == sent and publisher.confirmed == 1
    assert wait_until(lambda: publisher.pump(wait=0.1) and publisher.blocked is None)
    assert publisher.flush(30)
    publisher.close()
    assert ids_in_first_seen_order(consumer.drain(expect=9)) == [first] + ids
    assert "lost broker connection" not in caplog.text


def test_failover_to_second_url_and_no_password_in_logs(amqp_config, consumer, running_broker,
                                                        caplog):
    from tests.support.rabbitmq import free_port
    dead = f"amqp://guest:hunter2@127.0.0.1:{free_port()}/"
    amqp = AmqpConfig(urls=(dead, running_broker.url), exchange=amqp_config.exchange,
                      spool_dir=amqp_config.spool_dir, connect_timeout=2.0)
    publish_once(amqp, "a.b", {"n": 1}, message_id="failover")
    assert [p.message_id for p, _ in consumer.drain(expect=1)] == ["failover"]
    only_dead = AmqpConfig(urls=(dead,), exchange=amqp_config.exchange,
                           spool_dir=amqp_config.spool_dir, connect_timeout=1.0, confirm_timeout=1.0)
    publish_once(only_dead, "a.b", {"n": 2}, message_id="spooled")
    assert "hunter2" not in caplog.text
    assert "broker unavailable" in caplog.text


def test_feed_prints_messages_as_json_and_exits_after_count(amqp_config, config_file):
    feed = spawn("--config", config_file, "feed", "--json", "--count", "3")
    try:
        wait_line(feed.stderr, lambda line: line.startswith("listening"))
        publisher = Publisher(amqp_config)
        for n in range(3):
            publisher.publish(f"ganeti.snf.event.op", {"type": "ganeti-op-status", "n": n},
                              message_id=f"f{n}")
        publisher.close(timeout=10)
        out, _ = feed.communicate(timeout=30)
    finally:
        reap(feed)
    assert feed.returncode == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["message_id"] for r in records] == ["f0", "f1", "f2"]
    assert records[0]["routing_key"] == "ganeti.snf.event.op"
    assert records[2]["body"]["n"] == 2


def test_feed_timeout_exits_1(config_file):
    result = cli("--config", config_file, "feed", "--count", "1", "--timeout", "1")
    assert result.returncode == 1


def test_status_reports_broker_and_spool(amqp_config, config_file, running_broker, tmp_path):
    Publisher(amqp_config).spool.put([envelope_for("a.b", {})])
    result = cli("--config", config_file, "status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["core"]
    assert report["broker"].startswith("reachable") and report["spool_depth"] == 1
    assert report["oldest_spooled_seconds"] >= 0
    from tests.support.rabbitmq import free_port
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"amqp:\n  urls: ['amqp://u:topsecret@127.0.0.1:{free_port()}/']\n"
                   f"  spool_dir: {tmp_path}/s2\n  connect_timeout: 1\n")
    result = cli("--config", str(bad), "status")
    assert result.returncode == 1
    assert "UNREACHABLE" in result.stdout and "topsecret" not in result.stdout + result.stderr
    assert "AMQPConnectionError (Connection refused)" in result.stdout, result.stdout


def test_spool_flush_delivers_and_reports(amqp_config, consumer, config_file):
    from snf_ganeti.spool import Spool
    spool = Spool(amqp_config.spool_dir)
    for n in range(10):
        spool.put([envelope_for("a.b", {"n": n}, f"s{n}")])
    result = cli("--config", config_file, "spool", "flush", "--timeout", "20")
    assert result.returncode == 0, result.stderr
    assert "10 delivered, 0 still spooled" in result.stdout
    assert ids_in_first_seen_order(consumer.drain(expect=10)) == [f"s{n}" for n in range(10)]
