"""Events: what happened to an object and why (Scheduled, FailedScheduling, Evicted, ...).

Repeats are merged: one Event per (object, reason, message) whose `count` and
`lastTimestamp` grow, as Kubernetes does. Every Event is attached to a store lease, so old
events expire by themselves and never grow the store without bound; no controller has to
clean them up.
"""

from __future__ import annotations

import hashlib

from constellation.apis.event import Event
from constellation.apis.meta import Resource
from constellation.client.client import Client, utc_now
from constellation.store import AlreadyExists, Conflict, LeaseNotFound, NotFound

MAX_ATTEMPTS = 5


class StoreEventRecorder:
    """Writes Events through the client. Best effort: losing an event to a write race after
    several tries is better than failing the reconcile that reported it."""

    def __init__(self, client: Client, component: str, ttl_seconds: int = 3600) -> None:
        self._client = client
        self._component = component
        self._ttl = ttl_seconds

    def record(self, obj: Resource, reason: str, message: str, type_: str = "Normal") -> None:
        name = event_name(obj, reason, message)
        namespace = (obj.metadata.namespace if obj.NAMESPACED else None) or "default"
        for _ in range(MAX_ATTEMPTS):
            try:
                existing = self._client.find(Event, name, namespace)
                if existing is None:
                    self._create(obj, name, namespace, reason, message, type_)
                else:
                    existing.count += 1
                    existing.lastTimestamp = utc_now()
                    self._client.update(existing)
                return
            except (AlreadyExists, Conflict, NotFound, LeaseNotFound):
                continue  # raced with another recorder or an expiry: look again

    def _create(
        self, obj: Resource, name: str, namespace: str, reason: str, message: str, type_: str
    ) -> None:
        now = utc_now()
        event = Event.model_validate(
            {
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {
                    "kind": obj.KIND,
                    "namespace": obj.metadata.namespace,
                    "name": obj.metadata.name,
                    "uid": obj.metadata.uid,
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": self._component},
            }
        )
        lease = self._client.store.grant_lease(self._ttl)
        self._client.create(event, lease=lease)


def event_name(obj: Resource, reason: str, message: str) -> str:
    """Stable per (object, reason, message), so a repeat finds the Event to count up."""
    digest = hashlib.sha1(
        f"{obj.KIND}/{obj.metadata.uid}/{reason}/{message}".encode(), usedforsecurity=False
    ).hexdigest()[:10]
    return f"{obj.metadata.name}.{digest}"
