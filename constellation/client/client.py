"""Typed CRUD over a Store with Kubernetes object semantics.

What the API server does for Kubernetes, this does in-process for every caller: uid and
creationTimestamp on create, resourceVersion as the key's mod_revision with compare-and-swap
on every write, generation bumped only when the spec changes, status written only through
`update_status` (and spec never through it), and finalizers honoured on delete.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Generic, Literal, TypeVar

from constellation.apis.meta import Resource
from constellation.client.codec import (
    SERVER_METADATA,
    Envelope,
    decode_record,
    kind_prefix,
    object_key,
    spec_part,
    stored_form,
    to_object,
)
from constellation.client.selector import Selector
from constellation.store import Conflict, EventType, NotFound, Store, Watch
from constellation.store.types import Stream

R = TypeVar("R", bound=Resource)
Clock = Callable[[], datetime]
Propagation = Literal["Background", "Foreground", "Orphan"]

# The finalizers through which the garbage collector carries out a propagation policy
# (Kubernetes' names, so manifests and habits carry over).
FOREGROUND_FINALIZER: Final = "foregroundDeletion"
ORPHAN_FINALIZER: Final = "orphan"
PROPAGATION_FINALIZERS: Final[dict[str, str]] = {
    "Foreground": FOREGROUND_FINALIZER,
    "Orphan": ORPHAN_FINALIZER,
}


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class WatchEventType(enum.Enum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class WatchEvent(Generic[R]):
    type: WatchEventType
    object: R


class ObjectWatch(Stream[WatchEvent[R]]):
    """Typed events of one kind; iterate, or poll with `next_event(timeout)`; close it."""

    def __init__(self, kind: type[R], watch: Watch, selector: Selector | None) -> None:
        self._kind = kind
        self._watch = watch
        self._selector = selector

    def next_event(self, timeout: float | None = None) -> WatchEvent[R] | None:
        while True:
            event = self._watch.next_event(timeout)
            if event is None:
                return None
            typed = self._convert(event.type, event.record.value, event.prev_value, event.revision)
            if self._selector is None or self._selector.matches(typed.object.metadata.labels):
                return typed

    def _convert(
        self, type_: EventType, value: bytes, prev: bytes | None, revision: int
    ) -> WatchEvent[R]:
        if type_ is EventType.DELETE:
            assert prev is not None
            deleted = to_object(self._kind, Envelope.decode(prev).object, revision)
            return WatchEvent(WatchEventType.DELETED, deleted)
        obj = to_object(self._kind, Envelope.decode(value).object, revision)
        kind = WatchEventType.ADDED if prev is None else WatchEventType.MODIFIED
        return WatchEvent(kind, obj)

    def close(self) -> None:
        self._watch.close()


class Client:
    def __init__(self, store: Store, clock: Clock = utc_now) -> None:
        self.store = store
        self._clock = clock

    # -- reads ---------------------------------------------------------------------------

    def get(self, kind: type[R], name: str, namespace: str | None = "default") -> R:
        record = self.store.get(object_key(kind, _scope(kind, namespace), name))
        if record is None:
            raise _not_found(kind, namespace, name)
        return decode_record(kind, record)

    def find(self, kind: type[R], name: str, namespace: str | None = "default") -> R | None:
        try:
            return self.get(kind, name, namespace)
        except NotFound:
            return None

    def list(
        self, kind: type[R], namespace: str | None = None, selector: Selector | None = None
    ) -> tuple[list[R], int]:
        """Objects of `kind` in `namespace` (None: all), filtered by `selector`, and the
        revision they were read at (a resourceVersion to watch from)."""
        records, revision = self.store.list(kind_prefix(kind, _scope(kind, namespace)))
        objects = [decode_record(kind, record) for record in records]
        if selector:
            objects = [obj for obj in objects if selector.matches(obj.metadata.labels)]
        return objects, revision

    def watch(
        self,
        kind: type[R],
        namespace: str | None = None,
        resource_version: int = 0,
        selector: Selector | None = None,
    ) -> ObjectWatch[R]:
        """Changes after `resource_version` (0: from now on)."""
        start = resource_version + 1 if resource_version else 0
        watch = self.store.watch(kind_prefix(kind, _scope(kind, namespace)), start)
        return ObjectWatch(kind, watch, selector)

    # -- writes --------------------------------------------------------------------------

    def create(
        self,
        obj: R,
        *,
        applied: dict[str, Any] | None = None,
        created_by: str | None = None,
        lease: int | None = None,
    ) -> R:
        """Store a new object (`AlreadyExists` if present). `applied` and `created_by` are
        apply's bookkeeping: the manifest applied and the apply set that created it. With a
        store `lease`, the object is deleted when the lease expires."""
        document = stored_form(obj)
        metadata = document["metadata"]
        for field in SERVER_METADATA:
            metadata.pop(field, None)
        metadata.update(
            uid=str(uuid.uuid4()), generation=1, creationTimestamp=self._clock().isoformat()
        )
        key = object_key(type(obj), obj.metadata.namespace, obj.metadata.name)
        record = self.store.create(
            key, Envelope(document, applied, created_by).encode(), lease=lease
        )
        return to_object(type(obj), document, record.mod_revision)

    def update(self, obj: R) -> R:
        """Write metadata and spec (not status) if `obj` still has the live resourceVersion."""
        document, revision = self._update(obj)
        return to_object(type(obj), document, revision)

    def update_version(self, obj: R) -> str:
        """`update`, returning only the new resourceVersion: for hot paths (the scheduler's
        binds) that do not need the stored object back, whose validation costs as much as the
        rest of the write's Python."""
        return str(self._update(obj)[1])

    def update_status(self, obj: R) -> R:
        """Write only the status, if `obj` still has the live resourceVersion."""
        live, envelope, revision = self._read_for_write(obj)
        document = {**live, "status": stored_form(obj).get("status")}
        written = Envelope(document, envelope.applied, envelope.created_by)
        return to_object(type(obj), *self._write(type(obj), live, written, revision))

    def delete(
        self,
        kind: type[R],
        name: str,
        namespace: str | None = "default",
        resource_version: str | None = None,
        propagation: Propagation = "Background",
    ) -> R | None:
        """Delete now, or, while finalizers remain, mark the object with deletionTimestamp
        (returned) and leave the deleting to whoever removes the last finalizer.

        `propagation` is Kubernetes' propagationPolicy, carried out by the garbage collector:
        Background deletes at once and the dependents follow; Foreground and Orphan add the
        `foregroundDeletion` or `orphan` finalizer, so the object stays until its dependents
        are deleted, or released from it. An object already marked keeps its finalizers."""
        key = object_key(kind, _scope(kind, namespace), name)
        record = self.store.get(key)
        if record is None:
            raise _not_found(kind, namespace, name)
        expected = int(resource_version) if resource_version else record.mod_revision
        envelope = Envelope.decode(record.value)
        metadata = envelope.object["metadata"]
        finalizers = _with_propagation(metadata.get("finalizers") or [], propagation)
        if not finalizers:
            self.store.delete(key, expected)
            return None
        if metadata.get("deletionTimestamp"):
            return to_object(kind, envelope.object, record.mod_revision)
        metadata.update(deletionTimestamp=self._clock().isoformat(), finalizers=finalizers)
        updated = self.store.update(key, envelope.encode(), expected)
        return to_object(kind, envelope.object, updated.mod_revision)

    def delete_unchanged(self, obj: R) -> R | None:
        """`delete` of `obj` at the resourceVersion it was read at (Conflict if it changed
        since). Without finalizers (the common case) that is one round trip: the stored
        object at that version is `obj`, so there is nothing to read first."""
        meta = obj.metadata
        if meta.finalizers or not meta.resourceVersion:
            return self.delete(type(obj), meta.name, meta.namespace, meta.resourceVersion)
        key = object_key(type(obj), _scope(type(obj), meta.namespace), meta.name)
        self.store.delete(key, int(meta.resourceVersion))
        return None

    # -- internals -------------------------------------------------------------------------

    def _read_for_write(self, obj: Resource) -> tuple[dict[str, Any], Envelope, int]:
        kind = type(obj)
        key = object_key(kind, obj.metadata.namespace, obj.metadata.name)
        record = self.store.get(key)
        if record is None:
            raise _not_found(kind, obj.metadata.namespace, obj.metadata.name)
        expected = int(obj.metadata.resourceVersion or 0)
        if expected != record.mod_revision:
            raise Conflict(
                f"{kind.KIND.lower()} {obj.metadata.name} was modified (resourceVersion "
                f"{record.mod_revision}, not {expected}): read it again and retry"
            )
        envelope = Envelope.decode(record.value)
        return envelope.object, envelope, record.mod_revision

    def _update(self, obj: Resource) -> tuple[dict[str, Any], int]:
        live, envelope, revision = self._read_for_write(obj)
        document = stored_form(obj)
        document["status"] = live.get("status")
        document["metadata"] = _keep_server_metadata(document["metadata"], live["metadata"])
        if spec_part(document) != spec_part(live):
            document["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1
        written = Envelope(document, envelope.applied, envelope.created_by)
        return self._write(type(obj), live, written, revision)

    def _write(
        self, kind: type[Resource], live: dict[str, Any], envelope: Envelope, revision: int
    ) -> tuple[dict[str, Any], int]:
        """CAS-write the envelope unless nothing changed; delete instead when the last
        finalizer of an object being deleted is gone. Returns the document as stored and
        its revision (of the deletion, if deleted)."""
        document = envelope.object
        if document.get("status") is None:
            document.pop("status", None)
        metadata = document["metadata"]
        key = object_key(kind, metadata.get("namespace"), metadata["name"])
        if metadata.get("deletionTimestamp") and not metadata.get("finalizers"):
            return document, self.store.delete(key, revision)
        if document == live:
            return document, revision
        return document, self.store.update(key, envelope.encode(), revision).mod_revision


def _with_propagation(finalizers: list[str], propagation: Propagation) -> list[str]:
    """The finalizers a deletion with `propagation` leaves on the object."""
    added = PROPAGATION_FINALIZERS.get(propagation)
    if added is None and propagation != "Background":
        raise ValueError(
            f"unknown propagation {propagation!r}: use Background, Foreground or Orphan"
        )
    return [*finalizers, added] if added and added not in finalizers else finalizers


def _keep_server_metadata(new: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The caller's metadata, except the fields only the server sets, which stay as they are."""
    user = {k: v for k, v in new.items() if k not in SERVER_METADATA}
    return {**user, **{k: live[k] for k in SERVER_METADATA if k in live}}


def _scope(kind: type[Resource], namespace: str | None) -> str | None:
    return namespace if kind.NAMESPACED else None


def _not_found(kind: type[Resource], namespace: str | None, name: str) -> NotFound:
    where = f"{namespace}/{name}" if kind.NAMESPACED and namespace else name
    return NotFound(f"{kind.KIND.lower()} {where} not found")
