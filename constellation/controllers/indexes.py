"""Indexes over informer caches (client-go's Indexers): the objects with a given owner, the
replicas of one Instance, the replicas bound to one node.

Without them each of those questions is a scan of the whole cache, asked once per change:
when a node is lost with 334 of 1,000 replicas, the garbage collector scanned every object
for dependents of each replica deleted, and that quadratic work took a third of the
manager's time. An informer keeps each index current as objects arrive; `indexed` asks a
lister for one and falls back to a scan for listers without indexes (direct store reads in
tests), so a reconciler reads the same answer either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from constellation.apis.meta import Resource
from constellation.apis.replica import Replica
from constellation.controllers.base import Lister

R = TypeVar("R", bound=Resource)


@dataclass(frozen=True)
class Index:
    """A named function from an object to the values it is found under."""

    name: str
    values: Callable[[Resource], tuple[str, ...]]
    kinds: tuple[type[Resource], ...] = ()  # () : every kind

    def applies_to(self, kind: type[Resource]) -> bool:
        return not self.kinds or kind in self.kinds


def _owner_uids(obj: Resource) -> tuple[str, ...]:
    return tuple(ref.uid for ref in obj.metadata.ownerReferences)


def _instance(obj: Resource) -> tuple[str, ...]:
    if not isinstance(obj, Replica):
        return ()
    return (instance_value(obj.metadata.namespace, obj.spec.instanceName),)


def _node(obj: Resource) -> tuple[str, ...]:
    node = obj.spec.nodeName if isinstance(obj, Replica) else None
    return (node,) if node else ()


def instance_value(namespace: str | None, instance: str) -> str:
    """BY_INSTANCE's value for the replicas of `instance` in `namespace`."""
    return f"{namespace}/{instance}"


BY_OWNER = Index("owner-uid", _owner_uids)
BY_INSTANCE = Index("instance", _instance, (Replica,))
BY_NODE = Index("node", _node, (Replica,))
ALL_INDEXES = (BY_OWNER, BY_INSTANCE, BY_NODE)


def indexes_for(kind: type[Resource]) -> tuple[Index, ...]:
    return tuple(index for index in ALL_INDEXES if index.applies_to(kind))


def indexed(lister: Lister[R], index: Index, value: str) -> Sequence[R]:
    """The objects of `lister` found under `value` in `index`: read-only, as `peek`'s."""
    # getattr, as `peek` does: a runtime Protocol check costs more than the lookup.
    by_index = getattr(lister, "by_index", None)
    if by_index is not None:
        found: Sequence[R] = by_index(index, value)
        return found
    return [obj for obj in lister.list() if value in index.values(obj)]
