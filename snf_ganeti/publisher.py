"""AMQP publisher that loses nothing: spool first, then send, forget on confirm.

``publish()`` returns once the message is fsync'd in the spool; sending is
pipelined (publisher confirms are asynchronous, up to ``WINDOW`` in flight) and
a spool entry is removed only when the broker acknowledged it. After any broker
trouble everything still spooled is sent again, in order, on the next
connection: the consumer sees each message at least once, with a stable
``message_id`` to drop repeats by.

While the broker blocks publishing (a RabbitMQ memory or disk alarm) nothing more
is sent: it would only fill socket buffers the broker no longer reads, and a write
to full buffers holds the process until pika gives up on the connection. The
broker says it blocks a connection only once that connection publishes, so a new
connection sends one message and opens the window at its first confirm. Such a
connection is dropped without the closing handshake, which the broker would not
answer either, so a short-lived process still returns within its timeout.
Connections themselves (TLS, trying each URL) are snf_ganeti.broker's.

Only the process holding the spool's sender lock talks to the broker; the
others leave their messages in the spool for it. A long-lived holder (a
daemon) re-lists the spool every ``RELIST_SECONDS`` to pick those up.
"""

import collections
import logging
import queue
import random
import threading
import time

import pika
import pika.exceptions

from snf_ganeti.broker import BROKER_ERRORS, abort, connect, describe, wake
from snf_ganeti.config import mask_url
from snf_ganeti.errors import SpoolError
from snf_ganeti.spool import COMPACT_JSON, Envelope, Spool

log = logging.getLogger(__name__)

WINDOW = 512
# A batch is spooled in entries of at most this many messages: after a reconnect an entry is
# read back and sent again from its start, which for an eventd catch-up of 10,000 messages in
# one entry would be all of them.
ENTRY_MAX = WINDOW
RELIST_SECONDS = 0.2
# flush() and close() wait at least this long for confirmed entries to be deleted: not for
# good, as a stalled disk would then hold a daemon's exit until systemd kills it.
REMOVE_GRACE = 5.0


def new_message_id():
    """128 random bits as 32 hex digits, like ``uuid4().hex`` without its system call per id
    (dhcpd makes one per lease): ``random`` is seeded from the OS, and again after a fork."""
    return f"{random.getrandbits(128):032x}"


def envelope_for(routing_key, body, message_id=None, created=None):
    """The envelope of one message; ``body`` is a JSON-serialisable dict."""
    return Envelope(message_id or new_message_id(), routing_key,
                    COMPACT_JSON.encode(body).encode(),
                    time.time() if created is None else created)


class _Remover:
    """Deletes confirmed spool entries off the publishing thread.

    An unlink costs as much as the fsync of a new entry on some disks; doing
    it here keeps it out of ``publish()``. Until deleted, a name stays in
    ``pending`` so that a re-listing of the spool does not send it again; one
    that cannot be deleted stays there (the next process sends it once more).
    """

    def __init__(self, spool):
        self._spool = spool
        self._names = queue.Queue()
        self.pending = set()
        self._thread = None

    def remove(self, name):
        self.pending.add(name)
        self._names.put(name)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spool-remover", daemon=True)
            self._thread.start()

    def _run(self):
        while True:
            name = self._names.get()
            try:
                self._spool.remove(name)
                self.pending.discard(name)
            except OSError as err:  # stays pending: this process will not send it again
                log.warning("cannot remove confirmed spool entry %s: %s", name, err.strerror)
            finally:
                self._names.task_done()

    def wait(self, timeout=None):
        """True once every removal asked for is done; False after ``timeout`` seconds (a
        stalled disk): what is left is sent once more by the next sender."""
        done = self._names.all_tasks_done
        with done:
            return done.wait_for(lambda: not self._names.unfinished_tasks, timeout)


class Publisher:
    """Publishes messages through the spool. Not thread-safe: one per thread."""

    def __init__(self, amqp, spool=None, clock=time.monotonic):
        self.amqp = amqp
        self.spool = spool or Spool(amqp.spool_dir)
        self._lock = self.spool.sender_lock()
        self._clock = clock
        self._connection = self._channel = None
        self._url_index = 0
        self._failures = 0
        self._retry_at = 0.0
        self._queue = collections.deque()      # entry names to send, in order
        self._sending = None                   # (name, envelopes, next index) of an entry
                                               # partly sent
        self._inflight = collections.OrderedDict()  # delivery tag -> entry name
        self._unconfirmed = {}                 # entry name -> its messages not confirmed yet
        self._known = set()                    # names queued or in flight
        self._written = {}                     # name -> envelopes, written while connected
        self._remover = _Remover(self.spool)
        self._seen = set()                     # every name this process listed or wrote
        self._next_tag = 1
        self._listed_at = None
        self._refused = False
        self.blocked = None  # the broker's reason while it blocks our publishing
        self._proven = False  # this connection has had a confirm: the whole window is open
        self.sent = self.confirmed = 0

    # -- public surface -------------------------------------------------------

    def publish(self, routing_key, body, message_id=None):
        """Spool one message (fsync'd before return) and start sending it."""
        envelope = envelope_for(routing_key, body, message_id)
        self.publish_envelopes([envelope])
        return envelope.message_id

    def publish_many(self, messages):
        """Spool a batch of (routing_key, body, message_id) with one fsync, then send."""
        envelopes = [envelope_for(*message) for message in messages]
        if envelopes:
            self.publish_envelopes(envelopes)
        return [envelope.message_id for envelope in envelopes]

    def publish_envelopes(self, envelopes):
        """Spool ``envelopes`` (one fsync per ENTRY_MAX of them), then send; the last entry's
        name. A SpoolError leaves the entries before it spooled: sent twice if the caller
        tries again, under the same message ids."""
        name = None
        for start in range(0, len(envelopes), ENTRY_MAX):
            entry = envelopes[start:start + ENTRY_MAX]
            name = self.spool.put(entry)
            self._seen.add(name)
            if self._connection is not None:
                self._written[name] = entry  # saves reading them back to send them
                self._enqueue(name)
        self.pump()
        return name

    @property
    def connected(self):
        return self._connection is not None

    @property
    def is_sender(self):
        return self._lock.held

    def pump(self, wait=0.0):
        """Send what can be sent and take in confirms; never raises for broker trouble.

        Returns False when another process is the spool's sender.
        """
        if not self._lock.acquire():
            return False
        if not self._ensure_connected():
            return True
        try:
            now = self._clock()
            if self._listed_at is None or now - self._listed_at >= RELIST_SECONDS:
                self._relist()
            self._send_queued()
            self._connection.process_data_events(time_limit=wait)
            if self._refused:
                self._disconnect("the broker refused (nack) messages")
                return True
            if self._send_queued():
                self._connection.process_data_events(time_limit=0)  # write what was buffered
        except BROKER_ERRORS as err:
            self._disconnect(f"lost broker connection: {describe(err)}")
        return True

    def flush(self, timeout):
        """Deliver every spooled message; True when the broker confirmed them all (their
        entries deleted, or left for the next sender to send once more if the disk stalls
        for more than REMOVE_GRACE).

        Gives up after ``timeout`` seconds (the messages stay spooled), or at
        once when another process is the sender (it will deliver them).
        """
        deadline = self._clock() + timeout
        while True:
            if not self.pump(wait=0.05):
                return False
            # Listed again only once all it knew of is confirmed: each pass now ends at a
            # confirm, and a backlog of thousands of entries is not to be listed per batch.
            if self._connection is not None and self._all_sent():
                self._relist()
                if self._all_sent():
                    self._remover.wait(max(REMOVE_GRACE, deadline - self._clock()))
                    return True
            remaining = deadline - self._clock()
            if remaining <= 0:
                return False
            if self._connection is None:
                time.sleep(max(0.0, min(remaining, self._retry_at - self._clock(), 0.5)))

    def close(self, timeout=0.0):
        """Flush for up to ``timeout`` seconds, then stop being the sender.

        After letting go of the lock, a message another process spooled while
        we held it (and so did not send itself) is looked for once more.
        """
        deadline = self._clock() + timeout
        if timeout > 0:
            self.flush(timeout)
        self._disconnect(None)
        self._remover.wait(max(REMOVE_GRACE, deadline - self._clock()))
        self._lock.release()
        remaining = deadline - self._clock()
        unseen = [n for n in self.spool.entries() if n not in self._seen]
        if unseen and remaining > 0 and self._lock.acquire():
            self._seen.update(unseen)
            self.flush(remaining)
            self._disconnect(None)
            self._lock.release()

    def serve(self, should_stop, idle=0.1):
        """Deliver the spool until ``should_stop()``: the daemons' loop."""
        while not should_stop():
            self.pump(wait=idle if self._connection is not None else 0.0)
            if self._connection is None:
                time.sleep(max(0.0, min(idle, self._retry_at - self._clock())) or idle)

    # -- internals ------------------------------------------------------------

    def _ensure_connected(self):
        if self._connection is not None:
            return True
        now = self._clock()
        if now < self._retry_at:
            return False
        try:
            connection, index = connect(self.amqp, self._url_index)
            channel = connection.channel()
            channel.exchange_declare(self.amqp.exchange, exchange_type="topic", durable=True,
                                     auto_delete=False, internal=False)
            self._select_confirms(connection, channel)
            connection.add_on_connection_blocked_callback(self._on_blocked)
            connection.add_on_connection_unblocked_callback(self._on_unblocked)
        except Exception as err:  # BrokerError, or trouble while declaring
            self._failures += 1
            delay = min(self.amqp.max_backoff, 0.25 * 2 ** min(self._failures, 16))
            self._retry_at = now + delay * random.uniform(0.8, 1.0)
            if self._failures == 1 or self._failures % 20 == 0:
                log.warning("broker unavailable, messages stay spooled (%s); retrying",
                            err if not isinstance(err, BROKER_ERRORS) else describe(err))
            self._url_index = (self._url_index + 1) % len(self.amqp.urls)
            return False
        if self._failures:
            log.info("connected to %s", mask_url(self.amqp.urls[index]))
        self._connection, self._channel, self._url_index = connection, channel, index
        self._failures = 0
        self._refused = False
        self._proven = False
        self._next_tag = 1
        self._reset_flight()
        self.spool.reap_incomplete()
        self._relist()
        return True

    def _select_confirms(self, connection, channel):
        # BlockingChannel.confirm_delivery() would wait for each confirm; going
        # through the underlying channel lets confirms arrive asynchronously.
        selected = []

        def on_selected(frame):
            selected.append(frame)
            wake(connection)

        channel._impl.confirm_delivery(ack_nack_callback=self._on_confirm,
                                       callback=on_selected)
        deadline = self._clock() + self.amqp.connect_timeout
        while not selected:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise pika.exceptions.AMQPConnectionError("confirm.select timed out")
            connection.process_data_events(time_limit=remaining)

    def _on_blocked(self, _connection, frame):
        self.blocked = getattr(frame.method, "reason", None) or "no reason given"
        log.warning("the broker blocks publishing (%s), messages stay spooled", self.blocked)

    def _on_unblocked(self, _connection, _frame):
        log.info("the broker takes messages again")
        self.blocked = None

    def _relist(self):
        self._listed_at = self._clock()
        confirmed = self._remover.pending
        for name in self.spool.entries():
            if name not in confirmed:
                self._seen.add(name)
                self._enqueue(name)

    def _enqueue(self, name):
        if name not in self._known:
            self._known.add(name)
            self._queue.append(name)

    def _send_queued(self):
        """Send queued messages while fewer than the window are unconfirmed: the window counts
        messages, so an entry may go out in parts."""
        if self.blocked:
            return 0
        window = WINDOW if self._proven else 1
        sent = 0
        while len(self._inflight) < window and self._next_part():
            name, envelopes, index = self._sending
            envelope = envelopes[index]
            properties = pika.BasicProperties(
                delivery_mode=2, content_type="application/json",
                message_id=envelope.message_id, timestamp=int(envelope.created),
                app_id="snf-ganeti")
            self._inflight[self._next_tag] = name
            self._next_tag += 1
            # The underlying channel only buffers the frames; pump() writes
            # them all with one process_data_events instead of one poll each.
            self._channel._impl.basic_publish(self.amqp.exchange, envelope.routing_key,
                                              envelope.body, properties)
            self._sending = (name, envelopes, index + 1) if index + 1 < len(envelopes) else None
            sent += 1
        self.sent += sent
        return sent

    def _all_sent(self):
        """Nothing queued, partly sent or unconfirmed."""
        return not self._queue and self._sending is None and not self._inflight

    def _next_part(self):
        """Whether there is a message to send: ``_sending`` is then (entry name, its
        envelopes, index of the next one)."""
        while self._sending is None and self._queue:
            name = self._queue.popleft()
            envelopes = self._written.pop(name, None) or self.spool.read(name)
            if envelopes is None:  # confirmed by an earlier sender, or moved to bad/
                self._known.discard(name)
                continue
            self._unconfirmed[name] = len(envelopes)
            self._sending = (name, envelopes, 0)
        return self._sending is not None

    def _on_confirm(self, frame):
        if self._connection is not None:  # None: frames read while closing
            wake(self._connection)
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            # The broker could not take them: start over on a new connection
            # (after this callback returns), which resends everything in order.
            self._refused = True
            return
        self._proven = True
        tag = method.delivery_tag
        if method.multiple:
            tags = []
            for t in self._inflight:  # ordered: stop at the first later tag
                if t > tag:
                    break
                tags.append(t)
        else:
            tags = [tag]
        for t in tags:
            name = self._inflight.pop(t, None)
            if name is None:
                continue
            self.confirmed += 1
            self._unconfirmed[name] -= 1
            if not self._unconfirmed[name]:
                del self._unconfirmed[name]
                self._remover.remove(name)
                self._known.discard(name)

    def _reset_flight(self):
        """Forget what was queued or in flight: a new connection resends it from the spool."""
        self._queue.clear()
        self._inflight.clear()
        self._unconfirmed.clear()
        self._known.clear()
        self._written.clear()
        self._sending = None

    def _disconnect(self, reason):
        if reason:
            log.warning("%s; %d message(s) will be sent again", reason,
                        len(self._inflight) + len(self._queue))
        connection, self._connection, self._channel = self._connection, None, None
        self._reset_flight()
        if connection is not None and self.blocked:
            abort(connection)
        elif connection is not None:
            try:
                connection.close()
            except Exception:  # already broken; nothing to save
                pass
        self.blocked = None


def publish_once(amqp, routing_key, body, message_id=None, timeout=None):
    """For short-lived processes: spool, try to deliver within ``timeout``, return.

    ``timeout`` defaults to ``amqp.confirm_timeout``.

    Never raises for broker trouble (the spool keeps the message); raises
    SpoolError when the message could not even be spooled.
    """
    publisher = Publisher(amqp)
    try:
        return publisher.publish(routing_key, body, message_id)
    finally:
        try:
            publisher.close(timeout=amqp.confirm_timeout if timeout is None else timeout)
        except SpoolError:
            raise
        except Exception as err:  # delivery is best effort here; the spool has it
            log.warning("message spooled, delivery deferred: %s", describe(err))
