"""Node lifecycle: a node whose agent stopped beating becomes NotReady, and after a grace
period its replicas are failed so they are replaced on healthy nodes.

The agent's heartbeat is a store key (`heartbeat_key(name)`) attached to its lease: it exists
exactly while the lease lives, and its DELETE is the moment the node is lost. Informers only
know kinds, so that key reaches this controller in one of two ways:

- Wired (fast, free while idle): the manager starts each `sources()` entry after the
  informers have synced, as `source.start(controller.queue.add)`, and stops it with the
  term. `HeartbeatMonitor` watches the heartbeat prefix and queues the node's key on every
  change, so a lost lease turns into NotReady within one reconcile.
- Not wired (a fallback that is still correct): reconcile reads the heartbeat key itself,
  and one node key (the "sweeper") requeues itself every `SWEEP_SECONDS` to list the
  heartbeats and reconcile every node whose Ready condition disagrees with them. One list
  per interval, however many nodes, instead of a poll per node.

Grace: NotReady is written with the time it began (`lastTransitionTime`, full precision);
the node's key is requeued for the moment grace runs out. Then every unfinished replica
bound to the node gets `status.phase: Failed, reason: NodeLost` and an Evicted event; the
replicas controller deletes such replicas and creates them again unbound, and the scheduler
places them on Ready nodes. Replicas bound to a lost node later (a scheduler that had not yet
seen it NotReady) are caught by the Replica mapper.

A node that comes back gets Ready again (only our own NotReady verdict is undone; a NotReady
the agent reported itself stays). It must not run a replica twice, which is the agent's
contract, not something a controller can do from here:

    An agent runs a replica only while the Replica object with that uid exists, has
    `spec.nodeName` equal to its own node name, and is not `Failed`. On start and after any
    gap in its watch it lists Replicas and stops every local process whose replica uid fails
    that test (deleted, rebound elsewhere, replaced by a new uid of the same name, or failed
    with NodeLost). It never writes status over a Failed replica: its status writes are
    compare-and-swap on what it last read, and it re-reads before writing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import ClassVar

from constellation.apis.meta import Condition, Resource
from constellation.apis.node import HEARTBEAT_PREFIX, Node, heartbeat_key
from constellation.apis.replica import Replica
from constellation.controllers.base import (
    ControllerContext,
    Enqueue,
    Key,
    KeySource,
    Mapper,
    Result,
)
from constellation.controllers.batch import SlowStart
from constellation.controllers.events import BackgroundRecorder
from constellation.controllers.indexes import BY_NODE, indexed
from constellation.store import Compacted, Conflict, NotFound, Store
from constellation.store.types import EventType

log = logging.getLogger(__name__)

# Fallback only: how stale a heartbeat verdict may be. One list of every heartbeat key per
# sweep: with 1,000 nodes about 0.25% of a core at 1 s, hence not shorter.
SWEEP_SECONDS = 1.0
CONFLICT_RETRY_SECONDS = 0.1
LOST_RECHECK_SECONDS = 30.0  # a lost node is looked at again for stragglers now and then
LOST_REASON = "NodeHeartbeatLost"
RESTORED_REASON = "NodeHeartbeatRestored"
EVICTED_REASON = "NodeLost"
WATCH_POLL_SECONDS = 0.5
WATCH_BACKOFF_SECONDS = (0.05, 2.0)


def node_name_of(key: str) -> str:
    return key[len(HEARTBEAT_PREFIX) :]


class HeartbeatMonitor:
    """Which nodes have a live heartbeat key, kept current by a watch on the heartbeat prefix;
    queues the node's key on every change. Resumes a broken watch from the last revision seen
    and relists (queueing every node whose liveness changed) when that history is gone."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._alive: set[str] = set()
        self._revision = 0
        self._enqueue: Enqueue | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def alive(self, name: str) -> bool:
        with self._lock:
            return name in self._alive

    def start(self, enqueue: Enqueue) -> None:
        self._enqueue = enqueue
        self._stop.clear()
        self._relist()  # synchronously: `alive` is right from the moment `running` is
        self._thread = threading.Thread(target=self._run, name="heartbeat-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(WATCH_POLL_SECONDS * 4)

    def _relist(self) -> None:
        records, revision = self._store.list(HEARTBEAT_PREFIX)
        fresh = {node_name_of(record.key) for record in records}
        with self._lock:
            changed = fresh ^ self._alive
            self._alive, self._revision = fresh, revision
        for name in sorted(changed):
            self._queue(name)

    def _run(self) -> None:
        low, high = WATCH_BACKOFF_SECONDS
        backoff = low
        while not self._stop.is_set():
            try:
                self._follow()
                backoff = low
            except Compacted:
                self._relist_quietly()
            except Exception:
                # The store is away: keep what we know, retry from the same revision.
                log.warning("heartbeat watch broke; retrying in %.2fs", backoff, exc_info=True)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, high)

    def _relist_quietly(self) -> None:
        try:
            self._relist()
        except Exception:
            log.warning("heartbeat relist failed", exc_info=True)
            self._stop.wait(WATCH_BACKOFF_SECONDS[0])

    def _follow(self) -> None:
        watch = self._store.watch(HEARTBEAT_PREFIX, self._revision + 1)
        try:
            while not self._stop.is_set():
                event = watch.next_event(WATCH_POLL_SECONDS)
                if event is None:
                    if watch.closed:
                        raise ConnectionError("heartbeat watch closed by the store")
                    continue
                name = node_name_of(event.key)
                with self._lock:
                    if event.type is EventType.DELETE:
                        self._alive.discard(name)
                    else:
                        self._alive.add(name)
                    self._revision = event.revision
                self._queue(name)
        finally:
            watch.close()

    def _queue(self, name: str) -> None:
        if self._enqueue is not None:
            self._enqueue(Key(None, name))


class NodeLifecycle:
    """Heartbeat lost -> NotReady -> (grace) -> replicas failed; heartbeat back -> Ready."""

    NAME: ClassVar[str] = "node-lifecycle"
    KIND: ClassVar[type[Resource]] = Node

    def __init__(self, ctx: ControllerContext) -> None:
        self._ctx = ctx
        self.monitor = HeartbeatMonitor(ctx.client.store)
        self._lock = threading.Lock()
        self._lost: set[str] = set()  # nodes past grace: replicas bound there are failed
        self._sweeper: Key | None = None
        self._swept_at = -SWEEP_SECONDS
        # A lost node's replicas are failed first and described after: an Evicted event
        # each, written inline, took as long as the failure itself.
        self.events = BackgroundRecorder(ctx.recorder)
        self._batches = SlowStart()

    def watches(self) -> Mapping[type[Resource], Mapper]:
        return {Replica: self._replica_changed}

    def stop(self, timeout: float = 5.0) -> bool:
        """Write the events still held back (bounded), before the store closes."""
        return self.events.flush(timeout)

    def sources(self) -> Sequence[KeySource]:
        """What the manager must start besides the informers (see the module docstring)."""
        return [self.monitor]

    def _replica_changed(self, obj: Resource) -> list[Key]:
        """A replica bound to a lost node (a late bind) wakes that node to fail it too."""
        node = obj.spec.nodeName if isinstance(obj, Replica) else None
        with self._lock:
            lost = node is not None and node in self._lost
        return [Key(None, node)] if lost and node is not None else []

    # -- reconcile -----------------------------------------------------------------------

    def reconcile(self, key: Key) -> Result:
        node = self._ctx.lister(Node).get(key.name, None)
        sweep = self._sweep_due(key, node is not None)
        if node is None:
            with self._lock:
                self._lost.discard(key.name)
            return sweep
        result = self._reconcile_node(node, self._heartbeat_alive(key.name))
        return _sooner(result, sweep)

    def _reconcile_node(self, node: Node, alive: bool) -> Result:
        if alive:
            self._restore(node)
            return Result()
        since = self._mark_not_ready(node)
        if since is None:
            return Result(requeue_after=CONFLICT_RETRY_SECONDS)
        remaining = (since + timedelta(seconds=self._grace()) - self._now()).total_seconds()
        if remaining > 0:
            return Result(requeue_after=remaining)
        with self._lock:
            self._lost.add(node.metadata.name)
        if not self._evict(node, since):
            return Result(requeue_after=CONFLICT_RETRY_SECONDS)
        return Result(requeue_after=LOST_RECHECK_SECONDS)

    def _heartbeat_alive(self, name: str) -> bool:
        # The monitor's watch and the Node informer are separate streams: a node may be seen
        # before its heartbeat's PUT is. So "dead" is confirmed by a read (a rare path);
        # "alive" is trusted, since a DELETE behind it queues this key again anyway.
        if self.monitor.running and self.monitor.alive(name):
            return True
        return self._ctx.client.store.get(heartbeat_key(name)) is not None

    def _grace(self) -> float:
        return self._ctx.settings.node_grace_seconds

    def _now(self) -> datetime:
        return self._ctx.clock()

    # -- the fallback sweep --------------------------------------------------------------

    def _sweep_due(self, key: Key, exists: bool) -> Result:
        """Without the monitor, one key (the sweeper) requeues itself to check every node's
        heartbeat; the others wait for their own changes."""
        if self.monitor.running:
            return Result()
        with self._lock:
            if self._sweeper is None and exists:
                self._sweeper = key
            if self._sweeper != key:
                return Result()
            due = time.monotonic() - self._swept_at >= SWEEP_SECONDS
            if due:
                self._swept_at = time.monotonic()
        nodes = self._ctx.lister(Node).list()
        if not nodes:
            with self._lock:
                self._sweeper = None  # the next node to appear takes over
            return Result()
        if due:
            self._sweep(nodes, key)
        return Result(requeue_after=SWEEP_SECONDS)

    def _sweep(self, nodes: Sequence[Node], own: Key) -> None:
        records, _ = self._ctx.client.store.list(HEARTBEAT_PREFIX)
        alive = {node_name_of(record.key) for record in records}
        for node in nodes:
            name = node.metadata.name
            if name == own.name or _agrees(node, name in alive):
                continue
            fresh = self._ctx.lister(Node).get(name, None)
            if fresh is not None:
                # Its write wakes the node's own key, which then keeps the grace deadline.
                self._reconcile_node(fresh, name in alive)

    # -- writes --------------------------------------------------------------------------

    def _mark_not_ready(self, node: Node) -> datetime | None:
        """Ready=False with our reason, written only when it is not already; returns since
        when it is NotReady (None: the write conflicted)."""
        current = _ready(node)
        now = self._now()
        if current is not None and current.status == "False" and current.reason == LOST_REASON:
            return current.lastTransitionTime or now
        since = current.lastTransitionTime if current and current.status == "False" else None
        since = since or now
        message = (
            f"the agent's heartbeat lease expired (noticed {now.isoformat(timespec='seconds')})"
        )
        if not self._set_ready(node, "False", LOST_REASON, message, since):
            return None
        self._ctx.recorder.record(
            node, "NodeNotReady", f"node {node.metadata.name}: {message}", "Warning"
        )
        return since

    def _restore(self, node: Node) -> None:
        """Undo our own NotReady once the heartbeat is back (never the agent's own)."""
        current = _ready(node)
        if current is None or current.status != "False" or current.reason != LOST_REASON:
            return
        with self._lock:
            self._lost.discard(node.metadata.name)
        message = "the agent's heartbeat is back"
        if self._set_ready(node, "True", RESTORED_REASON, message, self._now()):
            self._ctx.recorder.record(node, "NodeReady", f"node {node.metadata.name}: {message}")

    def _set_ready(
        self, node: Node, status: str, reason: str, message: str, since: datetime
    ) -> bool:
        condition = Condition.model_validate(
            {
                "type": "Ready",
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since,
            }
        )
        changed = node.model_copy(deep=True)
        others = [c for c in changed.status.conditions if c.type != "Ready"]
        changed.status.conditions = [*others, condition]
        try:
            self._ctx.client.update_status(changed)
        except (Conflict, NotFound):
            return False  # changed meanwhile: its own event brings the key back
        return True

    def _evict(self, node: Node, since: datetime) -> bool:
        """Fail every unfinished replica bound to `node`, several at a time (a lost node's
        replicas are only replaced as fast as they are failed); False if a write conflicted."""
        name = node.metadata.name
        message = (
            f"node {name} lost its heartbeat at {since.isoformat(timespec='seconds')} and "
            f"stayed NotReady for {self._grace():g}s"
        )
        victims = [
            replica
            for replica in indexed(self._ctx.lister(Replica), BY_NODE, name)
            if replica.status.phase not in ("Failed", "Succeeded")
        ]
        return all(self._batches.run(lambda replica: self._fail(replica, message, since), victims))

    def _fail(self, listed: Replica, message: str, since: datetime) -> bool:
        """Mark one replica Failed (NodeLost); False if it changed since it was read."""
        self.events.busy()
        replica = listed.model_copy(deep=True)  # listers may hand out their cache
        replica.status.phase = "Failed"
        replica.status.reason = EVICTED_REASON
        replica.status.message = message
        replica.status.conditions = _not_ready_conditions(replica.status.conditions, since)
        try:
            self._ctx.client.update_status(replica)
        except NotFound:
            return True
        except Conflict:
            return False
        self.events.record(replica, "Evicted", message, "Warning")
        return True


def _ready(node: Node) -> Condition | None:
    return next((c for c in node.status.conditions if c.type == "Ready"), None)


def _agrees(node: Node, alive: bool) -> bool:
    """Whether the node's Ready condition already says what its heartbeat does."""
    current = _ready(node)
    ours = current is not None and current.status == "False" and current.reason == LOST_REASON
    return ours != alive


def _not_ready_conditions(conditions: Sequence[Condition], since: datetime) -> list[Condition]:
    ready = Condition(
        type="Ready",
        status="False",
        reason=EVICTED_REASON,
        message="its node is lost",
        lastTransitionTime=since,
    )
    return [*(c for c in conditions if c.type != "Ready"), ready]


def _sooner(first: Result, second: Result) -> Result:
    delays = [r.requeue_after for r in (first, second) if r.requeue_after is not None]
    return Result(requeue_after=min(delays)) if delays else Result()
