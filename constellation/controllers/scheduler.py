"""The scheduler: binds each unbound Replica to a Node, kube-scheduler's way.

Filter (node Ready, not cordoned, nodeSelector, maxPerNode, resources fit), then score
(`Spread`: fewest replicas of the same Instance, then least requested; `BinPack`: most
requested that still fits), ties broken by node name so the same cluster gives the same
answer. Binding is a compare-and-swap update of `spec.nodeName`: a replica that changed
since it was read is simply reconciled again.

Why an in-memory picture of the cluster rather than summing bound replicas per decision:
the target is 1,000 placements/s with 1,000 nodes and 10,000 replicas, where one scan of
the replicas per decision would cost more than the whole budget. So the scheduler keeps, per
node, what is bound to it (updated on every bind and on every replica it is asked about,
rebuilt from the listers on start and now and then), and parses quantities once per node
version and template. A bind is "assumed" at once, as kube-scheduler does: the informer
cache shows it only a moment later, and the next decision must not hand out the same room.

Why heaps: scanning 1,000 nodes in Python per decision costs about as much as the bind
itself. Replicas with the same Instance, demand and placement form a `Pool` holding a heap
of nodes by score. A node's score for Spread only worsens as things are bound to it, so a
stale heap entry is refreshed lazily when it reaches the top; anything that can improve a
node (a replica leaving it, the Node object changing) pushes it afresh. BinPack scores
improve as nodes fill, so BinPack pools refresh every node that changed. A decision thus
costs a few heap operations instead of a scan; only an unschedulable replica scans every
node, to say why each one was rejected.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from constellation.apis.instance import Instance, Placement, ReplicaTemplate
from constellation.apis.meta import Condition, Resource
from constellation.apis.node import Node
from constellation.apis.quantity import cpu_millicores, memory_bytes
from constellation.apis.replica import Replica
from constellation.controllers.base import (
    ControllerContext,
    Key,
    Mapper,
    Result,
    peek,
)
from constellation.controllers.events import BackgroundRecorder
from constellation.store import Conflict, NotFound

log = logging.getLogger(__name__)

UNSCHEDULABLE_RETRY_SECONDS = 5.0  # also retried at once when a node or the Instance changes
CONFLICT_RETRY_SECONDS = 0.1
REBUILD_SECONDS = 60.0  # full recount from the listers: a safety net, not the main path
MAX_POOLS = 1024
SCHEDULED_CONDITION = "Scheduled"
DEFAULT_PLACEMENT = Placement()

InstanceKey = tuple[str | None, str]


@dataclass(frozen=True, slots=True)
class Demand:
    """What a replica reserves on its node: millicores, bytes, process ids."""

    cpu: int = 0
    memory: int = 0
    pids: int = 0


def demand_of(template: ReplicaTemplate) -> Demand:
    """Requests, each falling back to its limit when not requested (as Kubernetes does)."""
    requests, limits = template.resources.requests, template.resources.limits
    cpu = requests.cpu if requests.cpu is not None else limits.cpu
    memory = requests.memory if requests.memory is not None else limits.memory
    pids = requests.pids if requests.pids is not None else limits.pids
    return Demand(
        cpu_millicores(cpu) if cpu is not None else 0,
        memory_bytes(memory) if memory is not None else 0,
        pids or 0,
    )


def capacity_of(node: Node) -> Demand:
    """A node's allocatable; what it does not report, it does not offer."""
    allocatable = node.status.allocatable
    return Demand(
        cpu_millicores(allocatable.cpu) if allocatable.cpu is not None else 0,
        memory_bytes(allocatable.memory) if allocatable.memory is not None else 0,
        allocatable.pids or 0,
    )


@dataclass(frozen=True, slots=True)
class Request:
    """Everything a decision depends on besides the nodes: replicas with equal requests
    share a pool."""

    instance: InstanceKey
    demand: Demand
    selector: tuple[tuple[str, str], ...]
    max_per_node: int | None
    binpack: bool

    @classmethod
    def of(cls, replica: Replica, demand: Demand, placement: Placement) -> Request:
        return cls(
            (replica.metadata.namespace, replica.spec.instanceName),
            demand,
            tuple(sorted(placement.nodeSelector.items())),
            placement.maxPerNode,
            placement.strategy == "BinPack",
        )


@dataclass(frozen=True, slots=True)
class Binding:
    """A replica's reservation on a node. `assumed`: bound by us, not yet seen bound."""

    uid: str
    node: str
    demand: Demand
    instance: InstanceKey
    assumed: bool = False

    def same(self, other: Binding) -> bool:
        return (self.uid, self.node, self.demand, self.instance) == (
            other.uid,
            other.node,
            other.demand,
            other.instance,
        )


@dataclass(slots=True)
class Usage:
    """What is bound to one node name (kept even while no Node of that name exists)."""

    cpu: int = 0
    memory: int = 0
    pids: int = 0
    count: int = 0
    per_instance: Counter[InstanceKey] = field(default_factory=Counter)

    def add(self, binding: Binding, sign: int) -> None:
        self.cpu += sign * binding.demand.cpu
        self.memory += sign * binding.demand.memory
        self.pids += sign * binding.demand.pids
        self.count += sign
        self.per_instance[binding.instance] += sign
        if self.per_instance[binding.instance] <= 0:
            del self.per_instance[binding.instance]


class NodeState:
    """One Node as the scheduler sees it; `version` moves whenever anything about it does."""

    __slots__ = (
        "capacity",
        "cordoned",
        "index",
        "labels",
        "name",
        "ready",
        "rv",
        "usage",
        "version",
    )

    def __init__(self, node: Node, index: int, usage: Usage) -> None:
        self.index = index
        self.name = node.metadata.name
        self.usage = usage
        self.version = 0
        self.rv: str | None = None
        self.ready = False
        self.cordoned = False
        self.labels: Mapping[str, str] = {}
        self.capacity = Demand()
        self.refresh(node)

    def refresh(self, node: Node) -> None:
        self.rv = node.metadata.resourceVersion
        self.ready = node.ready() == "True"
        self.cordoned = node.spec.unschedulable
        self.labels = dict(node.metadata.labels)
        self.capacity = capacity_of(node)
        self.version += 1

    def rejections(self, request: Request) -> list[str]:
        """Why `request` cannot go here (empty: it can)."""
        if not self.ready:
            return ["not ready"]
        if self.cordoned:
            return ["cordoned"]
        if any(self.labels.get(k) != v for k, v in request.selector):
            return ["didn't match node selector"]
        usage = self.usage
        limit = request.max_per_node
        if limit is not None and usage.per_instance.get(request.instance, 0) >= limit:
            return ["maxPerNode reached"]
        return self._shortfalls(request.demand)

    def _shortfalls(self, demand: Demand) -> list[str]:
        usage, capacity = self.usage, self.capacity
        short = []
        if demand.cpu and usage.cpu + demand.cpu > capacity.cpu:
            short.append("insufficient cpu")
        if demand.memory and usage.memory + demand.memory > capacity.memory:
            short.append("insufficient memory")
        if demand.pids and usage.pids + demand.pids > capacity.pids:
            short.append("insufficient pids")
        return short

    def feasible(self, request: Request) -> bool:
        return not self.rejections(request)

    def score(self, request: Request) -> tuple[int, float, int, str]:
        """Lower is better. Spread: fewest of this Instance, least requested, fewest replicas.
        BinPack: most requested, most replicas."""
        usage, capacity, demand = self.usage, self.capacity, request.demand
        # The mean share of cpu and memory requested, over those the node offers. Spelled
        # out: a new pool scores every node, and this is most of a decision at 1,000 nodes.
        requested, shares = 0.0, 0
        if capacity.cpu > 0:
            requested += (usage.cpu + demand.cpu) / capacity.cpu
            shares += 1
        if capacity.memory > 0:
            requested += (usage.memory + demand.memory) / capacity.memory
            shares += 1
        if shares:
            requested /= shares
        if request.binpack:
            return (0, -requested, -usage.count, self.name)
        return (usage.per_instance.get(request.instance, 0), requested, usage.count, self.name)


HeapEntry = tuple[tuple[int, float, int, str], int, int]  # (score, node version, node index)


class Pool:
    """The nodes by score for one Request; see the module docstring for why lazily."""

    def __init__(self, request: Request, nodes: Sequence[NodeState | None]) -> None:
        self.request = request
        self.dirty: set[int] = set()
        self.heap: list[HeapEntry] = [
            (node.score(request), node.version, node.index) for node in nodes if node is not None
        ]
        # node index -> version of its live entry
        self.current: dict[int, int] = {index: version for _, version, index in self.heap}
        heapq.heapify(self.heap)

    def choose(self, nodes: Sequence[NodeState | None]) -> NodeState | None:
        self._push_dirty(nodes)
        heap, current, request = self.heap, self.current, self.request
        while heap:
            _, version, index = heap[0]
            if current.get(index) != version:
                heapq.heappop(heap)  # superseded by a fresher entry for that node
                continue
            node = nodes[index]
            if node is None:
                heapq.heappop(heap)
                del current[index]
            elif node.version != version:
                heapq.heapreplace(heap, (node.score(request), node.version, index))
                current[index] = node.version
            elif node.feasible(request):
                return node
            else:
                # Parked: it comes back when something that could make it fit changes.
                heapq.heappop(heap)
                del current[index]
        return None

    def _push_dirty(self, nodes: Sequence[NodeState | None]) -> None:
        for index in self.dirty:
            node = nodes[index]
            if node is not None:
                heapq.heappush(self.heap, (node.score(self.request), node.version, index))
                self.current[index] = node.version
        self.dirty.clear()


class ClusterCache:
    """Nodes, what is bound to them, and the pools. Not thread-safe: the Scheduler locks."""

    def __init__(self) -> None:
        self.nodes: list[NodeState | None] = []
        self.by_name: dict[str, NodeState] = {}
        self.usage: dict[str, Usage] = {}
        self.bound: dict[Key, Binding] = {}
        self.pools: dict[Request, Pool] = {}

    # -- nodes -------------------------------------------------------------------------

    def set_node(self, name: str, node: Node | None) -> None:
        state = self.by_name.get(name)
        if node is None:
            if state is not None:
                del self.by_name[name]
                self.nodes[state.index] = None
                state.version += 1
            return
        if state is None:
            usage = self.usage.setdefault(name, Usage())
            state = NodeState(node, len(self.nodes), usage)
            self.nodes.append(state)
            self.by_name[name] = state
        elif state.rv == node.metadata.resourceVersion:
            return
        else:
            state.refresh(node)
        self._changed(state, improved=True)

    def sync_nodes(self, nodes: Iterable[Node]) -> None:
        seen = set()
        for node in nodes:
            seen.add(node.metadata.name)
            self.set_node(node.metadata.name, node)
        for name in [name for name in self.by_name if name not in seen]:
            self.set_node(name, None)

    def _changed(self, state: NodeState, improved: bool) -> None:
        state.version += 1
        for pool in self.pools.values():
            if improved or pool.request.binpack:
                pool.dirty.add(state.index)

    # -- bindings ------------------------------------------------------------------------

    def observe(self, key: Key, want: Binding | None, unbound_uid: str | None) -> None:
        """Make the books for `key` say `want`; `unbound_uid`: the lister shows this uid
        unbound, which an assumed bind of that uid outranks (the lister is behind)."""
        have = self.bound.get(key)
        if have is not None and have.assumed and want is None and have.uid == unbound_uid:
            return
        if have is not None and want is not None and have.same(want):
            if have.assumed:
                self.bound[key] = want  # confirmed
            return
        if have is not None:
            self._account(self.bound.pop(key), -1)
        if want is not None:
            self.bound[key] = want
            self._account(want, +1)

    def rebuild(self, bindings: Mapping[Key, Binding], unbound: Mapping[Key, str]) -> None:
        """Recount everything from a full listing, keeping assumed binds the listing is
        still behind on."""
        kept = {
            key: have
            for key, have in self.bound.items()
            if have.assumed and unbound.get(key) == have.uid
        }
        self.bound = {**bindings, **kept}
        for usage in self.usage.values():
            usage.cpu = usage.memory = usage.pids = usage.count = 0
            usage.per_instance.clear()
        for binding in self.bound.values():
            self.usage.setdefault(binding.node, Usage()).add(binding, +1)
        self.pools.clear()
        for state in self.by_name.values():
            state.version += 1

    def _account(self, binding: Binding, sign: int) -> None:
        self.usage.setdefault(binding.node, Usage()).add(binding, sign)
        state = self.by_name.get(binding.node)
        if state is not None:
            self._changed(state, improved=sign < 0)

    # -- decisions -----------------------------------------------------------------------

    def choose(self, request: Request) -> NodeState | None:
        pool = self.pools.get(request)
        if pool is None:
            if len(self.pools) >= MAX_POOLS:
                self.pools.clear()  # pools are only caches: rebuilt on demand
            pool = self.pools[request] = Pool(request, self.nodes)
        return pool.choose(self.nodes)

    def explain(self, request: Request) -> str:
        """kube-scheduler's summary: "0/3 nodes are available: 2 insufficient memory, 1 not
        ready." (each node counted under every reason it failed for, reasons sorted)."""
        reasons: Counter[str] = Counter()
        for state in self.by_name.values():
            reasons.update(state.rejections(request))
        total = len(self.by_name)
        if not total:
            return "0/0 nodes are available: no nodes registered."
        listed = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
        return f"0/{total} nodes are available: {listed}."


@dataclass
class Timings:
    """Where the scheduler's time goes (for bench/scheduler.py): reading the replica,
    deciding, binding (the store write), handing the event over (its write happens in
    `BackgroundRecorder`)."""

    placements: int = 0
    read_seconds: float = 0.0  # the lister's read (an informer shares its cached object)
    decide_seconds: float = 0.0
    bind_seconds: float = 0.0
    event_seconds: float = 0.0


def needs_node(replica: Replica) -> bool:
    return (
        replica.spec.nodeName is None
        and replica.metadata.deletionTimestamp is None
        and replica.status.phase not in ("Failed", "Succeeded")
    )


class Scheduler:
    """Binds unbound Replicas to Nodes (see the module docstring)."""

    NAME: ClassVar[str] = "scheduler"
    KIND: ClassVar[type[Resource]] = Replica
    # A decision takes microseconds under the lock; a bind is a store round trip outside it.
    # With 2 workers, binding 334 replacements lagged their creation by 3 s on etcd.
    MIN_WORKERS: ClassVar[int] = 8

    def __init__(self, ctx: ControllerContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._cache = ClusterCache()
        self._pending: dict[Key, InstanceKey] = {}  # unschedulable, to retry on changes
        self._demands: dict[str, Demand] = {}  # by templateHash
        self._placements: dict[InstanceKey, Placement] = {}
        # Node and Instance changes reach us through the mappers when an informer runs;
        # without one (a DirectLister) every reconcile re-reads them instead.
        self._changed_nodes: set[str] = set()
        self._informed = False
        self._instance_epoch = 0
        self._rebuilt_at = -REBUILD_SECONDS
        self._nodes_synced_at = -REBUILD_SECONDS
        self.events = BackgroundRecorder(ctx.recorder)
        self.timings = Timings()

    def watches(self) -> Mapping[type[Resource], Mapper]:
        return {Node: self._node_changed, Instance: self._instance_changed}

    def stop(self, timeout: float = 5.0) -> bool:
        """Write the events still held back (bounded): call before the store closes, or a
        late event write meets a closed client. False if some were still queued."""
        return self.events.flush(timeout)

    # -- mappers (informer threads: cheap, and only bookkeeping) ------------------------

    def _node_changed(self, obj: Resource) -> list[Key]:
        with self._lock:
            self._informed = True
            self._changed_nodes.add(obj.metadata.name)
            if not isinstance(obj, Node) or obj.ready() != "True" or obj.spec.unschedulable:
                return []  # cannot help a pending replica
            return list(self._pending)

    def _instance_changed(self, obj: Resource) -> list[Key]:
        instance = (obj.metadata.namespace, obj.metadata.name)
        with self._lock:
            self._instance_epoch += 1
            self._placements.pop(instance, None)
            return [key for key, owner in self._pending.items() if owner == instance]

    # -- reconcile -----------------------------------------------------------------------

    def reconcile(self, key: Key) -> Result:
        started = time.perf_counter()
        # Read-only: the informer's own object. A write starts from a copy (see _bind).
        replica = peek(self._ctx.lister(Replica), key.name, key.namespace)
        read = time.perf_counter()
        self.timings.read_seconds += read - started
        request = self._request(replica) if replica is not None and needs_node(replica) else None
        with self._lock:
            self._refresh()
            self._cache.observe(key, self._binding(replica), _uid(replica))
            if replica is None or request is None or key in self._cache.bound:
                self._pending.pop(key, None)
                return Result()
            node = self._cache.choose(request)
            if node is None:
                message = self._cache.explain(request)
                self._pending[key] = request.instance
            else:
                self._assume(key, replica, node.name, request)
        self.timings.decide_seconds += time.perf_counter() - read
        if node is None:
            return self._unschedulable(replica, message)
        return self._bind(key, replica, node.name)

    def _refresh(self) -> None:
        """Bring nodes (and, now and then, all bindings) up to date; under the lock."""
        now = time.monotonic()
        if now - self._rebuilt_at >= REBUILD_SECONDS:
            self._rebuild()
            self._rebuilt_at = now
        if not self._informed or now - self._nodes_synced_at >= REBUILD_SECONDS:
            self._cache.sync_nodes(self._ctx.lister(Node).list())
            self._nodes_synced_at = now
            self._changed_nodes.clear()
            return
        nodes = self._ctx.lister(Node)
        for name in self._changed_nodes:
            self._cache.set_node(name, nodes.get(name, None))
        self._changed_nodes.clear()

    def _rebuild(self) -> None:
        bindings: dict[Key, Binding] = {}
        unbound: dict[Key, str] = {}
        for replica in self._ctx.lister(Replica).list():
            key = Key.of(replica)
            binding = self._binding(replica)
            if binding is not None:
                bindings[key] = binding
            elif replica.metadata.uid:
                unbound[key] = replica.metadata.uid
        self._cache.rebuild(bindings, unbound)

    def _binding(self, replica: Replica | None) -> Binding | None:
        """What `replica` holds on its node: nothing unless bound and not finished."""
        if replica is None or replica.spec.nodeName is None or not replica.metadata.uid:
            return None
        if replica.status.phase in ("Failed", "Succeeded"):
            return None
        return Binding(
            replica.metadata.uid,
            replica.spec.nodeName,
            self._demand(replica),
            (replica.metadata.namespace, replica.spec.instanceName),
        )

    def _assume(self, key: Key, replica: Replica, node: str, request: Request) -> None:
        assert replica.metadata.uid is not None
        binding = Binding(replica.metadata.uid, node, request.demand, request.instance, True)
        self._cache.observe(key, binding, None)
        self._pending.pop(key, None)

    def _forget(self, key: Key) -> None:
        with self._lock:
            self._cache.observe(key, None, None)

    # -- what a replica asks for ---------------------------------------------------------

    def _demand(self, replica: Replica) -> Demand:
        template_hash = replica.spec.templateHash
        if not template_hash:
            return demand_of(replica.spec.template)
        demand = self._demands.get(template_hash)
        if demand is None:
            if len(self._demands) >= MAX_POOLS * 4:
                self._demands.clear()
            demand = self._demands[template_hash] = demand_of(replica.spec.template)
        return demand

    def _request(self, replica: Replica) -> Request:
        return Request.of(replica, self._demand(replica), self._placement(replica))

    def _placement(self, replica: Replica) -> Placement:
        """The owning Instance's placement (the template does not carry it). Cached while
        the Instance mapper runs; the epoch keeps a read that raced a change out of it."""
        owner = (replica.metadata.namespace, replica.spec.instanceName)
        with self._lock:
            cached = self._placements.get(owner) if self._informed else None
            epoch = self._instance_epoch
        if cached is not None:
            return cached
        instance = peek(self._ctx.lister(Instance), owner[1], owner[0])
        placement = instance.spec.placement if instance is not None else DEFAULT_PLACEMENT
        with self._lock:
            if self._informed and epoch == self._instance_epoch:
                self._placements[owner] = placement
        return placement

    # -- writes --------------------------------------------------------------------------

    def _bind(self, key: Key, replica: Replica, node: str) -> Result:
        started = time.perf_counter()
        self.events.busy()
        # A shallow copy: only the spec changes, and the write reads the rest.
        bound = replica.model_copy(
            update={"spec": replica.spec.model_copy(update={"nodeName": node})}
        )
        try:
            version = self._ctx.client.update_version(bound)
        except (Conflict, NotFound):
            self._forget(key)  # it changed under us: decide again from what it is now
            return Result(requeue_after=CONFLICT_RETRY_SECONDS)
        finally:
            self.timings.bind_seconds += time.perf_counter() - started
        started = time.perf_counter()
        if replica.status.reason == "Unschedulable":
            self._mark_scheduled(replica, node, version)
        where = f"{replica.metadata.namespace}/{replica.metadata.name}"
        self.events.record(replica, "Scheduled", f"assigned {where} to {node}")
        self.timings.event_seconds += time.perf_counter() - started
        self.timings.placements += 1
        return Result()

    def _mark_scheduled(self, unbound: Replica, node: str, version: str) -> None:
        """Clear an earlier Unschedulable verdict (only then: a status write per bind
        would halve the placement rate for nothing). `version`: the bind's."""
        replica = unbound.model_copy(deep=True)
        replica.spec.nodeName = node
        replica.metadata.resourceVersion = version
        replica.status.reason = None
        replica.status.message = None
        replica.status.conditions = _with_condition(
            replica.status.conditions, "True", "Scheduled", f"assigned to {node}"
        )
        # On a conflict the agent wrote first; the stale verdict goes with the next write.
        with contextlib.suppress(Conflict, NotFound):
            self._ctx.client.update_status(replica)

    def _unschedulable(self, replica: Replica, message: str) -> Result:
        """Pending, saying why; status and event only when the verdict changed, so a
        replica waiting for room writes nothing while it waits."""
        retry = Result(requeue_after=UNSCHEDULABLE_RETRY_SECONDS)
        status = replica.status
        if status.reason == "Unschedulable" and status.message == message:
            return retry
        replica = replica.model_copy(deep=True)  # it was the informer's own
        status = replica.status
        status.phase = "Pending"
        status.reason = "Unschedulable"
        status.message = message
        status.conditions = _with_condition(status.conditions, "False", "Unschedulable", message)
        try:
            self._ctx.client.update_status(replica)
        except (Conflict, NotFound):
            return Result(requeue_after=CONFLICT_RETRY_SECONDS)
        self.events.record(replica, "FailedScheduling", message, "Warning")
        return retry


def _uid(replica: Replica | None) -> str | None:
    return replica.metadata.uid if replica is not None else None


def _with_condition(
    conditions: Sequence[Condition], status: str, reason: str, message: str
) -> list[Condition]:
    previous = next((c for c in conditions if c.type == SCHEDULED_CONDITION), None)
    since = previous.lastTransitionTime if previous and previous.status == status else None
    condition = Condition.model_validate(
        {
            "type": SCHEDULED_CONDITION,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": since or datetime.now(UTC),
        }
    )
    return [c for c in conditions if c.type != SCHEDULED_CONDITION] + [condition]
