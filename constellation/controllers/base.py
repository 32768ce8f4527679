"""The contract between reconcilers and the machinery that runs them (controller-runtime's).

A reconciler owns one concern. `reconcile(key)` reads desired and observed state every time
(level-based: it never branches on what event woke it), makes one step towards the desired
state, and is idempotent: calling it twice does no harm. It returns a `Result`; raising
requeues the key with per-key exponential backoff; raising `TerminalError` stops retrying
(the reconciler sets a condition saying why first). Status is written only when it changed.

Reconcilers read through `Lister`s (informer caches in the manager, direct store reads in
tests) and write through the `Client`, whose compare-and-swap makes a write from a stale
cache fail with Conflict instead of clobbering: the key is simply reconciled again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Generic, Protocol, TypeVar

from constellation.apis.event import ObjectReference
from constellation.apis.meta import Resource
from constellation.client.client import Client
from constellation.client.selector import Selector

R = TypeVar("R", bound=Resource)
R_co = TypeVar("R_co", bound=Resource, covariant=True)


@dataclass(frozen=True, order=True)
class Key:
    """What a reconciler is asked about: one object of its kind, by namespace and name."""

    namespace: str | None
    name: str

    @classmethod
    def of(cls, obj: Resource) -> Key:
        return cls(obj.metadata.namespace, obj.metadata.name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class Result:
    """`requeue_after`: reconcile this key again after that many seconds even if nothing
    changes (e.g. to check a deadline); None: only when something changes."""

    requeue_after: float | None = None


class TerminalError(Exception):
    """Retrying cannot help (e.g. an invalid reference); the key is not requeued."""


class Lister(Protocol[R_co]):
    """Read access to the objects of one kind."""

    def get(self, name: str, namespace: str | None = "default") -> R_co | None: ...

    def list(
        self, namespace: str | None = None, selector: Selector | None = None
    ) -> Sequence[R_co]: ...


def peek(lister: Lister[R], name: str, namespace: str | None = "default") -> R | None:
    """The object, to read and not to change: an informer's cached object itself (copying a
    Replica costs as much as deciding where it goes), or whatever `get` returns from a lister
    without `peek`. Copy it (`model_copy`) before changing anything in it."""
    # getattr, not isinstance against a runtime Protocol: that check costs 3 µs a call.
    shared = getattr(lister, "peek", None)
    found: R | None = shared(name, namespace) if shared is not None else lister.get(name, namespace)
    return found


class DirectLister(Generic[R]):
    """A Lister that reads the store on every call: exact, slower than an informer cache.
    For tests and one-off tools."""

    def __init__(self, client: Client, kind: type[R]) -> None:
        self._client = client
        self._kind = kind

    def get(self, name: str, namespace: str | None = "default") -> R | None:
        return self._client.find(self._kind, name, namespace)

    def list(self, namespace: str | None = None, selector: Selector | None = None) -> list[R]:
        return self._client.list(self._kind, namespace, selector)[0]


class EventRecorder(Protocol):
    """Records what happened to an object and why, as Event objects (see events.py). `obj`
    may be the object or a reference to it (`events.reference`)."""

    def record(
        self, obj: Resource | ObjectReference, reason: str, message: str, type_: str = "Normal"
    ) -> None: ...


# NotReady this long -> the node's replicas are replaced. It adds to the heartbeat lease's
# TTL (3 s, renewed every second, so NotReady means 2-3 s without a renewal): an agent
# silent for 3-4 s loses its replicas. That outlasts a stalled renewal or an etcd leader
# election, and leaves most of a 10 s failover (bench/scale.py) to replacing them; with
# 5 s, 8 s of it went to noticing. Kubernetes waits about 5 min 50 s, Nomad about 20 s.
DEFAULT_NODE_GRACE_SECONDS = 1.0


@dataclass
class Settings:
    """Tunables shared by the controllers; defaults follow DESIGN.md."""

    node_grace_seconds: float = DEFAULT_NODE_GRACE_SECONDS
    reconcile_timeout_seconds: float = 30.0
    event_ttl_seconds: int = 3600  # events expire through a store lease


def precise_now() -> datetime:
    """The controllers' clock: full precision, since they measure deadlines with it (a node's
    grace period); timestamps users read are truncated where they are written."""
    return datetime.now(UTC)


@dataclass
class ControllerContext:
    """Everything a reconciler may use. Built by the manager (informer listers) or by tests
    (`direct_context`)."""

    client: Client
    listers: Mapping[type[Resource], Lister[Resource]]
    recorder: EventRecorder
    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], datetime] = precise_now

    def lister(self, kind: type[R]) -> Lister[R]:
        return self.listers[kind]  # type: ignore[return-value]


Mapper = Callable[[Resource], Iterable[Key]]
"""Maps a change to an object of a watched kind to the keys it affects (e.g. a Replica's
change to its owning Instance's key)."""


class Reconciler(Protocol):
    """One concern. `KIND` is the kind whose keys it reconciles (each change to one queues its
    own key); `watches()` maps kinds (other kinds, or KIND itself for extra keys) to the keys
    their changes affect. One whose reconciles are mostly a store round trip may ask the
    manager for more worker threads than its default with a `MIN_WORKERS` class attribute;
    one whose key stands for many objects may have their progress batched with a
    `BATCH_SECONDS` class attribute (see runner.py)."""

    NAME: ClassVar[str]
    KIND: ClassVar[type[Resource]]

    def watches(self) -> Mapping[type[Resource], Mapper]: ...

    def reconcile(self, key: Key) -> Result: ...


Enqueue = Callable[[Key], None]


class KeySource(Protocol):
    """Something other than an informer that queues keys (e.g. the node heartbeat watch).
    A reconciler offering `sources()` has each started by the manager once the informers have
    synced (`start(controller.queue.add)`) and stopped when the term ends."""

    def start(self, enqueue: Enqueue) -> None: ...

    def stop(self) -> None: ...
