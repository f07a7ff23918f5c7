"""The Redis → WebSocket relay: one pub/sub subscriber thread per web process fanning task events out to
bounded per-client queues.

Redis publishes every task event on ``depot:events``. Instead of one subscription per socket, each web process
runs a single daemon thread (started lazily on the first WebSocket, so it is created after gunicorn forks) that
reads the channel and ``put_nowait``s each event into the queue of every interested client. The relay never
blocks on a client: a client whose queue is full is dropped and told to ``resync``. When Redis goes away the
thread backs off, resubscribes, and tells every client to resync, because pub/sub loses what was published
meanwhile; with Sentinel it does the same when the sentinels name a new master (a planned switch may leave its
connection open on the demoted one).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from shared import keys
from shared.redis_client import client_for, on_current_master

log = logging.getLogger(__name__)

#: How often the subscriber asks the sentinels whether its connection is still on the master (Sentinel URLs).
MASTER_CHECK_S = 1.0

#: Queue item telling a client handler to send ``{"type":"resync"}`` and close.
RESYNC = {"type": "resync"}


#: What a client queue holds: the decoded event (for filtering) and its JSON as published, UTF-8 encoded once
#: for every client (sent as is).
Item = tuple[dict[str, Any], bytes]
RESYNC_ITEM: Item = (RESYNC, json.dumps(RESYNC).encode())


@dataclass(eq=False)
class Subscription:
    """One client's view of the relay: a bounded queue and an optional task filter."""

    task_id: str | None
    maxsize: int
    queue: queue.Queue[Item] = field(init=False)
    #: set by the relay when the client fell behind or Redis was lost; the handler resyncs and closes
    resync: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.queue = queue.Queue(maxsize=self.maxsize)

    def offer(self, item: Item) -> bool:
        """Queue ``item`` without blocking; False (and flagged for resync) when the client cannot keep up."""
        if self.resync.is_set():
            return False
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            self.resync.set()
            return False

    def get_batch(self, timeout: float, limit: int = 256, linger: float = 0.0) -> list[Item]:
        """Whatever is queued (up to ``limit``, waiting up to ``timeout`` for the first, then ``linger`` seconds
        for more to gather), or ``[RESYNC_ITEM]`` once the relay flagged this client: what is still queued is
        moot, the client refetches everything."""
        if self.resync.is_set():
            return [RESYNC_ITEM]
        try:
            items = [self.queue.get(timeout=timeout)]
        except queue.Empty:
            return [RESYNC_ITEM] if self.resync.is_set() else []
        if linger > 0:
            time.sleep(linger)
        while len(items) < limit:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return [RESYNC_ITEM] if self.resync.is_set() else items


def subscriber_client(url: str) -> redis.Redis:
    """The relay's own client (plain or Sentinel URL), with retries off: redis-py's PubSub otherwise reconnects
    and resubscribes silently, and the relay would never learn that events were lost while Redis was away or
    while Sentinel moved the master."""
    return client_for(url, retries=0, client_name="depot-relay")


class Relay:
    """The per-process subscriber. ``subscribe()`` registers a client; ``unsubscribe()`` must follow."""

    def __init__(self, client_factory: Callable[[], redis.Redis], *, queue_max: int = 2000,
                 channel: str = keys.EVENTS_CHANNEL, poll_s: float = 1.0) -> None:
        self._client_factory = client_factory
        self.queue_max = queue_max
        self.channel = channel
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._subs: set[Subscription] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.subscribed = threading.Event()
        self.stats = {"events": 0, "dropped_clients": 0, "reconnects": 0}

    # --- client side --------------------------------------------------------------------------------

    def subscribe(self, task_id: str | None = None, *, wait_s: float = 5.0) -> Subscription:
        """Register a client; waits until the channel subscription is live so no event falls between the
        client's snapshot and its first live event."""
        self.ensure_started()
        sub = Subscription(task_id, self.queue_max)
        with self._lock:
            self._subs.add(sub)
        if not self.subscribed.wait(wait_s):
            self.unsubscribe(sub)
            raise redis.ConnectionError("The event relay is not subscribed to Redis (is Redis reachable?).")
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def client_count(self) -> int:
        with self._lock:
            return len(self._subs)

    # --- the subscriber thread ------------------------------------------------------------------------

    def ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="depot-relay", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the subscriber thread and end every client's session with a resync: nothing would feed their
        queues any more, and their handlers would wait on them for as long as the clients stay connected."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.resync_all()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                self._listen()
                return
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                lost = self.subscribed.is_set()
                self.subscribed.clear()
                if lost:
                    self.stats["reconnects"] += 1
                    backoff = 0.1
                    log.warning("event=relay_redis_lost error=%s", exc)
                # Whatever was published while we were away is gone: every client must refetch state.
                self.resync_all()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception:  # noqa: BLE001 - the relay thread must outlive any one bad message
                log.exception("event=relay_error")
                self.subscribed.clear()
                self.resync_all()
                self._stop.wait(1.0)

    def _listen(self) -> None:
        client = self._client_factory()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
            # The subscribe reply proves the subscription is active before clients take snapshots.
            deadline = time.monotonic() + 5.0
            while not pubsub.subscribed and time.monotonic() < deadline:
                pubsub.get_message(timeout=0.1)
            if not pubsub.subscribed:
                raise redis.ConnectionError("subscribe was not confirmed")
            self.subscribed.set()
            next_check = time.monotonic() + MASTER_CHECK_S
            while not self._stop.is_set():
                msg = pubsub.get_message(timeout=self.poll_s)
                if msg and msg.get("type") == "message":
                    self._fan_out(msg["data"])
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + MASTER_CHECK_S
                    # A planned Sentinel switch can leave this connection open on the demoted master for a
                    # while, hearing nothing that is published on the new one.
                    if not on_current_master(client, pubsub.connection):
                        raise redis.ConnectionError("Sentinel moved the master")
        finally:
            try:
                pubsub.close()
                client.close()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail; nothing to do
                pass

    def _fan_out(self, data: str) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("event=relay_bad_message data=%.200s", data)
            return
        self.stats["events"] += 1
        task_id = event.get("task_id")
        item = (event, data.encode())
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if sub.task_id is not None and sub.task_id != task_id:
                continue
            if not sub.offer(item):
                self._drop(sub)

    def _drop(self, sub: Subscription) -> None:
        with self._lock:
            if sub not in self._subs:
                return
            self._subs.discard(sub)
        self.stats["dropped_clients"] += 1
        log.info("event=relay_slow_client_dropped queue_max=%d", self.queue_max)

    def resync_all(self) -> None:
        """Tell every client to refetch state (their view may have a gap) and end their sessions."""
        with self._lock:
            subs = list(self._subs)
            self._subs.clear()
        for sub in subs:
            sub.resync.set()
            try:  # wake a handler blocked on an empty queue
                sub.queue.put_nowait(RESYNC_ITEM)
            except queue.Full:
                pass
