"""Events: what happened to an object and why (Scheduled, FailedScheduling, Evicted, ...).

Repeats are merged: one Event per (object, reason, message) whose `count` and
`lastTimestamp` grow, as Kubernetes does. Every Event is attached to a store lease, so old
events expire by themselves and never grow the store without bound; no controller has to
clean them up. Events recorded close together share one lease: a lease per Event cost a
store write per Event (about a third of the time recording one took) and filled the store
with leases.
"""

from __future__ import annotations

import hashlib
import threading
import time

from constellation.apis.event import Event, ObjectReference
from constellation.apis.meta import Resource
from constellation.client.client import Client, utc_now
from constellation.store import AlreadyExists, Conflict, LeaseNotFound, NotFound

MAX_ATTEMPTS = 5
# Events recorded within one window share a lease granted for ttl + window, so each lives
# between its ttl and ttl + window; the window is this fraction of the ttl (at least 1 s).
LEASE_WINDOW_FRACTION = 0.1


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
            try:
                existing = self._client.find(Event, name, namespace)
                if existing is None:
                    self._create(involved, name, namespace, reason, message, type_)
                else:
                    existing.count += 1
                    existing.lastTimestamp = utc_now()
                    self._client.update(existing)
                return
            except (AlreadyExists, Conflict, NotFound, LeaseNotFound):
                continue  # raced with another recorder or an expiry: look again

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
