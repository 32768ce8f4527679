"""Garbage collection: dependents go with their owners, as Kubernetes' ownerReferences promise.

Deleting an Instance must not leave its Replicas running, yet no controller should have to
remember to clean up after every delete. Like Kubernetes, ownership is data: a dependent lists
its owners (by uid, so an owner re-created under the same name is a different owner), and one
collector enforces three propagation policies, whichever client did the delete:

- Background: the owner is deleted at once; a dependent none of whose owners exists any more
  is deleted afterwards.
- Foreground: the owner carries the `foregroundDeletion` finalizer and stays, marked, until
  its dependents are deleted; it goes when those holding it (blockOwnerDeletion) are gone.
- Orphan: the owner carries the `orphan` finalizer; its dependents are released (their
  ownerReference to it removed) before it goes.

Any kind can own and any kind can depend, while a reconciler's key is only a namespace and
a name. So a key stands for every object of every kind with that name, each examined in both
roles: as a dependent (are its owners alive?) and, once marked for deletion, as an owner
(is its policy carried out?). Names rarely collide across kinds, and when they do the extra
work is a few cache lookups that change nothing.

Events take no part: they are written without owners and expire through their lease (see
events.py). Watching them would make the manager cache and decode every Event, the kind
written most often, for nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from constellation.apis.event import Event
from constellation.apis.meta import OwnerReference, Resource
from constellation.apis.registry import ALL_KINDS
from constellation.apis.replica import Replica
from constellation.client.client import FOREGROUND_FINALIZER, ORPHAN_FINALIZER, Propagation
from constellation.controllers.base import ControllerContext, Key, Mapper, Result, peek
from constellation.controllers.indexes import BY_OWNER, indexed
from constellation.store import Conflict, NotFound

log = logging.getLogger(__name__)

# A write lost to a concurrent change is retried soon; the change's own watch event usually
# brings the key back first.
RETRY_SECONDS = 0.5
# An owner in foreground deletion looks again this often while dependents hold it. A change
# that frees it (a dependent's ownerReference removed by hand) names no owner any more, so no
# watch event maps to the owner's key; Kubernetes' collector finds it through the previous
# version of the dependent, which our watch events do not carry.
FOREGROUND_RECHECK_SECONDS = 5.0

OWNED_KINDS: tuple[type[Resource], ...] = tuple(kind for kind in ALL_KINDS if kind is not Event)
"""The kinds that can own or depend (every kind but Event, see the module docstring)."""
_KINDS_BY_NAME: dict[str, type[Resource]] = {kind.KIND: kind for kind in OWNED_KINDS}


@dataclass
class Owners:
    """A dependent's ownerReferences sorted by what the owner's state means for it."""

    solid: list[OwnerReference] = field(default_factory=list)  # alive: keep the dependent
    dangling: list[OwnerReference] = field(default_factory=list)  # gone (or another uid)
    waiting: list[OwnerReference] = field(default_factory=list)  # in foreground deletion

    def blocking_wait(self) -> bool:
        return any(ref.blockOwnerDeletion for ref in self.waiting)


class GarbageCollector:
    """Deletes dependents whose owners are gone and carries out foreground and orphan
    deletions. KIND is Replica, the common dependent; `watches()` covers every kind
    (Replica included) so that an owner's deletion reaches its dependents' keys and a
    dependent's disappearance reaches its owners' keys."""

    NAME: ClassVar[str] = "garbage-collector"
    KIND: ClassVar[type[Resource]] = Replica

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx

    def watches(self) -> Mapping[type[Resource], Mapper]:
        return dict.fromkeys(OWNED_KINDS, self.affected_keys)

    def affected_keys(self, obj: Resource) -> Iterable[Key]:
        """Only the keys with work to do, since every change of every object (status
        updates included) comes through here: the object itself if it has owners or is
        being deleted; once it is gone, its owners (one may wait on it in foreground); once
        it is gone or being deleted, its dependents. The informer updates its cache before
        calling, so the cache tells whether the object is gone."""
        gone = not self._cached_alive(obj)
        meta = obj.metadata
        keys = set()
        if not gone and (meta.ownerReferences or meta.deletionTimestamp):
            keys.add(Key.of(obj))
        if gone:
            keys.update(Key(_owner_namespace(obj, ref), ref.name) for ref in meta.ownerReferences)
        if gone or meta.deletionTimestamp:
            keys.update(Key.of(dependent) for dependent in self._dependents(obj, live=False))
        return keys

    def reconcile(self, key: Key) -> Result:
        waiting = False
        try:
            for obj in self._objects_named(key):
                if obj.metadata.deletionTimestamp:
                    waiting = self._carry_out_policy(obj) or waiting
                elif obj.metadata.ownerReferences:
                    self._collect(obj)
        except (Conflict, NotFound) as error:
            # Someone changed or deleted what was read: read everything again.
            log.debug("garbage collection of %s raced: %s", key, error)
            return Result(requeue_after=RETRY_SECONDS)
        return Result(requeue_after=FOREGROUND_RECHECK_SECONDS if waiting else None)

    # -- a dependent --------------------------------------------------------------------

    def _collect(self, dependent: Resource) -> Resource | None:
        """Delete a dependent no live owner holds; release it from owners that are gone or
        in foreground deletion while another owner still holds it. Returns the dependent
        as it is now (None: deleted)."""
        owners = self._sort_owners(dependent)
        if not owners.solid:
            # As Kubernetes does: a foreground deletion stays foreground all the way down,
            # so an owner goes only after its dependents' own dependents.
            propagation: Propagation = "Foreground" if owners.blocking_wait() else "Background"
            return self._delete(dependent, propagation)
        if owners.dangling or owners.waiting:
            return self._release(dependent, {ref.uid for ref in owners.dangling + owners.waiting})
        return dependent

    def _sort_owners(self, dependent: Resource) -> Owners:
        owners = Owners()
        for ref in dependent.metadata.ownerReferences:
            kind = _owner_kind(dependent, ref)
            owner = self._owner(kind, dependent, ref) if kind is not None else None
            if kind is None:
                # An owner the collector cannot resolve counts as alive: deleting on a
                # guess would lose data.
                owners.solid.append(ref)
            elif owner is None:
                owners.dangling.append(ref)
            elif _in_foreground_deletion(owner):
                owners.waiting.append(ref)
            else:
                owners.solid.append(ref)
        return owners

    def _owner(
        self, kind: type[Resource], dependent: Resource, ref: OwnerReference
    ) -> Resource | None:
        """The owner `ref` names, or None if it is gone (or is another object by the name)."""
        namespace = _owner_namespace(dependent, ref)
        owner = peek(self.ctx.lister(kind), ref.name, namespace)
        if owner is None or owner.metadata.uid != ref.uid:
            # A cache can lag behind a just-created owner: confirm before deleting on it.
            owner = self.ctx.client.find(kind, ref.name, namespace)
        return owner if owner is not None and owner.metadata.uid == ref.uid else None

    # -- an owner being deleted -------------------------------------------------------------

    def _carry_out_policy(self, owner: Resource) -> bool:
        """True if the owner still waits for dependents to go."""
        if ORPHAN_FINALIZER in owner.metadata.finalizers:
            self._orphan(owner)
        elif FOREGROUND_FINALIZER in owner.metadata.finalizers:
            return self._delete_dependents_first(owner)
        return False

    def _orphan(self, owner: Resource) -> None:
        """Release every dependent, then let the owner go. Read live: a dependent missed
        here would be collected once the owner is gone, the opposite of what was asked."""
        assert owner.metadata.uid is not None
        for dependent in self._dependents(owner, live=True):
            self._release(dependent, {owner.metadata.uid})
        self._remove_finalizer(owner, ORPHAN_FINALIZER)

    def _delete_dependents_first(self, owner: Resource) -> bool:
        """Delete the dependents; once none holds the owner, let the owner go (False). The
        cache decides while dependents remain; a live read confirms before the owner goes."""
        if self._settle_dependents(owner, live=False) or self._settle_dependents(owner, live=True):
            return True
        self._remove_finalizer(owner, FOREGROUND_FINALIZER)
        return False

    def _settle_dependents(self, owner: Resource, live: bool) -> bool:
        """Collect the owner's dependents; True if any of them still holds it."""
        holding = False
        for dependent in self._dependents(owner, live):
            now = dependent if dependent.metadata.deletionTimestamp else self._collect(dependent)
            holding = holding or (now is not None and _blocks(now, owner))
        return holding

    def _dependents(self, owner: Resource, live: bool) -> Iterator[Resource]:
        """Objects of any kind that list `owner`'s uid among their owners. A namespaced
        owner's dependents share its namespace (a cluster-scoped object cannot name it, see
        `_owner_kind`); a cluster-scoped owner's may be anywhere."""
        namespace = owner.metadata.namespace if owner.NAMESPACED else None
        for kind in OWNED_KINDS:
            if owner.NAMESPACED and not kind.NAMESPACED:
                continue
            if live:
                listed = self.ctx.client.list(kind, namespace)[0]
                yield from (candidate for candidate in listed if _owned_by(candidate, owner))
                continue
            for candidate in indexed(self.ctx.lister(kind), BY_OWNER, owner.metadata.uid or ""):
                if namespace is None or candidate.metadata.namespace == namespace:
                    yield candidate

    # -- writes -------------------------------------------------------------------------

    def _delete(self, obj: Resource, propagation: Propagation) -> Resource | None:
        log.info("garbage-collecting %s %s (%s)", obj.KIND.lower(), Key.of(obj), propagation)
        return self.ctx.client.delete(
            type(obj),
            obj.metadata.name,
            obj.metadata.namespace,
            # Only the version judged: a dependent given a new owner meanwhile must stay.
            resource_version=obj.metadata.resourceVersion,
            propagation=propagation,
        )

    def _release(self, dependent: Resource, owner_uids: set[str]) -> Resource:
        released = dependent.model_copy(deep=True)
        refs = released.metadata.ownerReferences
        released.metadata.ownerReferences = [ref for ref in refs if ref.uid not in owner_uids]
        if released.metadata.ownerReferences == refs:
            return dependent
        return self.ctx.client.update(released)

    def _remove_finalizer(self, obj: Resource, finalizer: str) -> None:
        # The last finalizer's removal deletes the object (the client does that).
        done = obj.model_copy(deep=True)
        done.metadata.finalizers = [f for f in done.metadata.finalizers if f != finalizer]
        self.ctx.client.update(done)

    # -- reads --------------------------------------------------------------------------

    def _objects_named(self, key: Key) -> Iterator[Resource]:
        """Every object the key may stand for: namespaced kinds for a namespaced key,
        cluster-scoped kinds for a key without a namespace."""
        for kind in OWNED_KINDS:
            if (key.namespace is not None) == kind.NAMESPACED:
                obj = peek(self.ctx.lister(kind), key.name, key.namespace)
                if obj is not None:
                    yield obj

    def _cached_alive(self, obj: Resource) -> bool:
        cached = peek(self.ctx.lister(type(obj)), obj.metadata.name, obj.metadata.namespace)
        return cached is not None and cached.metadata.uid == obj.metadata.uid


def _owner_kind(dependent: Resource, ref: OwnerReference) -> type[Resource] | None:
    """The owner's kind, or None if unresolvable: not ours, or a namespaced owner named by a
    cluster-scoped object (which has no namespace to find it in)."""
    kind = _KINDS_BY_NAME.get(ref.kind)
    if kind is None or (kind.NAMESPACED and not dependent.NAMESPACED):
        return None
    return kind


def _owner_namespace(dependent: Resource, ref: OwnerReference) -> str | None:
    kind = _KINDS_BY_NAME.get(ref.kind)
    return dependent.metadata.namespace if kind is not None and kind.NAMESPACED else None


def _owned_by(candidate: Resource, owner: Resource) -> bool:
    return any(ref.uid == owner.metadata.uid for ref in candidate.metadata.ownerReferences)


def _blocks(dependent: Resource, owner: Resource) -> bool:
    return any(
        ref.uid == owner.metadata.uid and ref.blockOwnerDeletion
        for ref in dependent.metadata.ownerReferences
    )


def _in_foreground_deletion(obj: Resource) -> bool:
    meta = obj.metadata
    return meta.deletionTimestamp is not None and FOREGROUND_FINALIZER in meta.finalizers
