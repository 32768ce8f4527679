"""Scopes: an informer that caches only the objects it needs, as a kubelet watches only the
pods with `spec.nodeName` set to its node (a field selector).

The store cannot filter by field, so every change of every Replica reaches every agent. A
scope is tested on the stored document, before it becomes an object: validating a Replica
is most of what an event costs, and an agent of a 3-node cluster used to spend two thirds of
its informer's time on replicas of other nodes, and held them all in memory.

An object that leaves the scope (changed so that it no longer belongs) is delivered as a
deletion, so the cache drops it; events of objects the cache never held are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from constellation.client.codec import Envelope
from constellation.store.types import Event, EventType, Record, Watch

Scope = Callable[[dict[str, Any]], bool]
"""Whether a stored document (an object's `to_dict()` form) belongs in the cache."""

Cached = Callable[[str | None, str], bool]
"""Whether the cache holds an object of (namespace, name)."""


def on_node(node: str) -> Scope:
    """Replicas bound to `node`."""
    return lambda document: (document.get("spec") or {}).get("nodeName") == node


class ScopedWatch(Watch):
    """A store watch without the events of objects outside `scope` that the cache does not
    hold; `skipped` learns the revision of each event left out."""

    def __init__(
        self, inner: Watch, scope: Scope, cached: Cached, skipped: Callable[[int], None]
    ) -> None:
        super().__init__(on_close=inner.close)
        self._inner = inner
        self._scope = scope
        self._cached = cached
        self._skipped = skipped

    @property
    def closed(self) -> bool:
        return self._inner.closed

    def next_event(self, timeout: float | None = None) -> Event | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self._inner.next_event(left)
            if event is None:
                return None
            scoped = self._scoped(event)
            if scoped is not None:
                return scoped
            self._skipped(event.revision)

    def _scoped(self, event: Event) -> Event | None:
        raw = event.prev_value if event.type is EventType.DELETE else event.record.value
        assert raw is not None  # a deletion always has the value before it
        document = Envelope.decode(raw).object
        if self._scope(document):
            return event
        metadata = document["metadata"]
        if not self._cached(metadata.get("namespace"), metadata["name"]):
            return None
        gone = Record(event.record.key, b"", 0, event.revision, 0)
        return Event(EventType.DELETE, gone, raw)  # left the scope: gone, for this cache
