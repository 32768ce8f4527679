"""Events: what happened to an object and why (Scheduled, FailedScheduling, Evicted, ...).

Repeats are merged: one Event per (object, reason, message) whose `count` and
`lastTimestamp` grow, as Kubernetes does. Every Event is attached to a store lease, so old
events expire by themselves and never grow the store without bound; no controller has to
clean them up. Events recorded close together share one lease: a lease per Event cost a
store write per Event (about a third of the time recording one took) and filled the store
with leases. During a burst (placements, a lost node's replicas failed), a
`BackgroundRecorder` writes them from a thread of its own, after the writes they describe.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time

from constellation.apis.event import Event, ObjectReference
from constellation.apis.meta import Resource
from constellation.client.client import Client, utc_now
from constellation.controllers.base import EventRecorder
from constellation.store import AlreadyExists, Conflict, LeaseNotFound, NotFound

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Events recorded within one window share a lease granted for ttl + window, so each lives
# between its ttl and ttl + window; the window is this fraction of the ttl (at least 1 s).
LEASE_WINDOW_FRACTION = 0.1
EVENT_BACKLOG = 10_000  # background events waiting beyond this are dropped (and counted)
EVENT_WORKER_IDLE_SECONDS = 1.0
# While important writes flow, background events wait (the store and the GIL go to those
# first), but none longer than this: a burst is handled first, its events follow.
EVENT_QUIET_SECONDS = 0.05
EVENT_MAX_DELAY_SECONDS = 5.0


class StoreEventRecorder:
    """Writes Events through the client. Best effort: losing an event to a write race after
    several tries is better than failing the reconcile that reported it. Thread-safe."""

    def __init__(self, client: Client, component: str, ttl_seconds: int = 3600) -> None:
        self._client = client
        self._component = component
        self._ttl = ttl_seconds
        self._window = max(1, round(ttl_seconds * LEASE_WINDOW_FRACTION))
        self._lease_lock = threading.Lock()
        self._lease: int | None = None
        self._lease_until = 0.0  # monotonic: events recorded later need a new lease

    def record(
        self, obj: Resource | ObjectReference, reason: str, message: str, type_: str = "Normal"
    ) -> None:
        """`obj` may be the object or a `reference` to it (all an Event keeps of it)."""
        involved = obj if isinstance(obj, ObjectReference) else reference(obj)
        name = event_name(involved, reason, message)
        namespace = involved.namespace or "default"  # a cluster-scoped object's go there
        for _ in range(MAX_ATTEMPTS):
            # Created first, without a read: most events are new (a burst of failures,
            # placements), and the read cost a round trip each.
            try:
                self._create(involved, name, namespace, reason, message, type_)
                return
            except AlreadyExists:
                if self._count_up(name, namespace):
                    return
            except LeaseNotFound:
                continue  # expired or revoked: `_create` takes a new lease next time

    def _count_up(self, name: str, namespace: str) -> bool:
        """One more of an Event that exists; False if it changed or expired meanwhile."""
        try:
            existing = self._client.get(Event, name, namespace)
            existing.count += 1
            existing.lastTimestamp = utc_now()
            self._client.update(existing)
        except (Conflict, NotFound):
            return False  # raced with another recorder or an expiry: try again
        return True

    def _create(
        self,
        involved: ObjectReference,
        name: str,
        namespace: str,
        reason: str,
        message: str,
        type_: str,
    ) -> None:
        now = utc_now()
        event = Event.model_validate(
            {
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": involved.model_dump(),
                "reason": reason,
                "message": message,
                "type": type_,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": self._component},
            }
        )
        lease = self._shared_lease()
        try:
            self._client.create(event, lease=lease)
        except LeaseNotFound:
            self._drop_lease(lease)  # revoked or expired early: the retry takes a new one
            raise

    def _shared_lease(self) -> int:
        with self._lease_lock:
            now = time.monotonic()
            if self._lease is None or now >= self._lease_until:
                self._lease = self._client.store.grant_lease(self._ttl + self._window)
                self._lease_until = now + self._window
            return self._lease

    def _drop_lease(self, lease: int) -> None:
        with self._lease_lock:
            if self._lease == lease:
                self._lease = None


def reference(obj: Resource) -> ObjectReference:
    """Who an Event is about. Queue this rather than the object: it is all an Event keeps,
    and a whole object held until its event is written is kilobytes (a Replica, 9 KB)."""
    meta = obj.metadata
    return ObjectReference(kind=obj.KIND, namespace=meta.namespace, name=meta.name, uid=meta.uid)


def event_name(obj: Resource | ObjectReference, reason: str, message: str) -> str:
    """Stable per (object, reason, message), so a repeat finds the Event to count up."""
    involved = obj if isinstance(obj, ObjectReference) else reference(obj)
    digest = hashlib.sha1(
        f"{involved.kind}/{involved.uid}/{reason}/{message}".encode(), usedforsecurity=False
    ).hexdigest()[:10]
    return f"{involved.name}.{digest}"


class BackgroundRecorder:
    """Records events from a thread of its own, as client-go's event broadcaster does.

    Why: writing an Event costs a store round trip, as much as the bind or the failure it
    reports, so recording inline would halve the placement rate; and with one GIL and one
    SQLite writer, a parallel event thread still takes it from the binds. So while that
    work flows (`busy()`), events wait, but never longer than
    `EVENT_MAX_DELAY_SECONDS`: a burst is handled first and described moments later. Events
    are best effort anyway (see `StoreEventRecorder`): past `EVENT_BACKLOG` waiting, new ones
    are dropped and counted rather than slowing the work down. The thread ends when idle for
    a second, so a controller from an ended leadership term leaves nothing running.
    """

    def __init__(self, recorder: EventRecorder, backlog: int = EVENT_BACKLOG) -> None:
        self._recorder = recorder
        self._queue: queue.Queue[tuple[float, ObjectReference, str, str, str]] = queue.Queue(
            backlog
        )
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._busy_at = 0.0
        self.dropped = 0

    def busy(self) -> None:
        """Say that more important work (a bind, a failure) is under way: events hold back
        a moment."""
        self._busy_at = time.monotonic()

    def record(
        self, obj: Resource | ObjectReference, reason: str, message: str, type_: str = "Normal"
    ) -> None:
        # A reference, not the object: a burst queues thousands, and a Replica is 9 KB.
        involved = obj if isinstance(obj, ObjectReference) else reference(obj)
        try:
            self._queue.put_nowait((time.monotonic(), involved, reason, message, type_))
        except queue.Full:
            self.dropped += 1
            return
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._drain, name="background-events", daemon=True
                )
                self._worker.start()

    def flush(self, timeout: float) -> bool:
        """Wait until every queued event is written; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=EVENT_WORKER_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    # Checked under the lock `record` starts workers with: nothing is lost.
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            queued_at, obj, reason, message, type_ = item
            self._hold_back(queued_at)
            try:
                self._recorder.record(obj, reason, message, type_)
            except Exception:
                log.warning("could not record event %s", reason, exc_info=True)
            finally:
                self._queue.task_done()

    def _hold_back(self, queued_at: float) -> None:
        while time.monotonic() - queued_at < EVENT_MAX_DELAY_SECONDS:
            quiet_for = time.monotonic() - self._busy_at
            if quiet_for >= EVENT_QUIET_SECONDS:
                return
            time.sleep(EVENT_QUIET_SECONDS - quiet_for)
