"""The scheduler against a real store (SQLite and etcd): spread, binpack, filters, and the
reason an unschedulable replica gives. Nodes are written as data (simulate.make_node)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from constellation.apis.event import Event
from constellation.apis.instance import INSTANCE_LABEL, Instance
from constellation.apis.node import Node
from constellation.apis.replica import Replica
from constellation.client.client import Client
from constellation.controllers.base import ControllerContext, DirectLister, Key
from constellation.controllers.scheduler import Scheduler, demand_of
from constellation.store import Store
from tests.controllers.simulate import make_node, ready_condition

SchedulerFactory = Callable[[ControllerContext], Scheduler]


@pytest.fixture
def schedulers(store: Store) -> Iterator[SchedulerFactory]:
    """Needs `store` so that it is torn down first."""
    yield from stopping_schedulers()


def stopping_schedulers() -> Iterator[SchedulerFactory]:
    """Makes Schedulers whose held-back events are written before the store closes (a
    write on a closed etcd client can crash the process)."""
    started: list[Scheduler] = []

    def make(context: ControllerContext) -> Scheduler:
        started.append(Scheduler(context))
        return started[-1]

    yield make
    for scheduler in started:
        assert scheduler.stop(10)


def make_instance(
    client: Client,
    name: str,
    replicas: int,
    requests: dict[str, Any] | None = None,
    placement: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
) -> tuple[Instance, list[Replica]]:
    """An Instance and its unbound Replicas, written as the replicas controller would."""
    resources = {"requests": requests or {}, "limits": limits or {}}
    instance = client.create(
        Instance.model_validate(
            {
                "metadata": {"name": name},
                "spec": {
                    "command": ["sleep", "infinity"],
                    "replicas": replicas,
                    "resources": resources,
                    "placement": placement or {},
                },
            }
        )
    )
    return instance, [add_replica(client, instance, ordinal) for ordinal in range(replicas)]


def add_replica(client: Client, instance: Instance, ordinal: int) -> Replica:
    owner = {
        "kind": "Instance",
        "name": instance.metadata.name,
        "uid": instance.metadata.uid,
        "controller": True,
    }
    replica = Replica.model_validate(
        {
            "metadata": {
                "name": f"{instance.metadata.name}-{ordinal}",
                "labels": {INSTANCE_LABEL: instance.metadata.name},
                "ownerReferences": [owner],
            },
            "spec": {
                "instanceName": instance.metadata.name,
                "ordinal": ordinal,
                "template": instance.spec.template().model_dump(),
                "templateHash": f"hash-{instance.metadata.name}",
            },
        }
    )
    return client.create(replica)


def schedule_all(scheduler: Scheduler, client: Client) -> None:
    """Reconcile every replica key, in name order (as an informer's first list would)."""
    for replica in sorted(client.list(Replica)[0], key=lambda r: r.metadata.name):
        scheduler.reconcile(Key.of(replica))


def placement_of(client: Client, instance: str | None = None) -> Counter[str | None]:
    return Counter(
        r.spec.nodeName
        for r in client.list(Replica)[0]
        if instance is None or r.spec.instanceName == instance
    )


def test_spread_places_six_replicas_two_per_node(
    client: Client, context: ControllerContext, schedulers: SchedulerFactory
) -> None:
    for name in ("node-a", "node-b", "node-c"):
        make_node(client, name)
    make_instance(client, "web", 6, requests={"cpu": "500m", "memory": "256Mi"})
    scheduler = schedulers(context)
    schedule_all(scheduler, client)
    assert placement_of(client) == {"node-a": 2, "node-b": 2, "node-c": 2}
    assert scheduler.events.flush(10)
    events = [e for e in client.list(Event)[0] if e.reason == "Scheduled"]
    assert len(events) == 6
    assert any(e.message == "assigned default/web-0 to node-a" for e in events)


def test_spread_separates_instances_and_prefers_the_least_requested(
    client: Client, context: ControllerContext, schedulers: SchedulerFactory
) -> None:
    make_node(client, "node-a")
    make_node(client, "node-b")
    make_instance(client, "big", 1, requests={"cpu": "2"})
    scheduler = schedulers(context)
    schedule_all(scheduler, client)
    make_instance(client, "small", 1, requests={"cpu": "100m"})
    schedule_all(scheduler, client)
    # Both nodes hold no "small" replica: the less requested one wins.
    assert placement_of(client, "big") == {"node-a": 1}
    assert placement_of(client, "small") == {"node-b": 1}


def test_binpack_fills_one_node_before_the_next(
    client: Client, context: ControllerContext, schedulers: SchedulerFactory
) -> None:
    for name in ("node-a", "node-b", "node-c"):
        make_node(client, name, cpu="4")
    make_instance(client, "batch", 6, requests={"cpu": "1"}, placement={"strategy": "BinPack"})
    schedule_all(schedulers(context), client)
    assert placement_of(client) == {"node-a": 4, "node-b": 2}


def test_unschedulable_replica_stays_pending_with_each_nodes_reason(
    client: Client, context: ControllerContext, schedulers: SchedulerFactory
) -> None:
    make_node(client, "node-a", memory="1Gi")
    make_node(client, "node-b", memory="2Gi")
    down = make_node(client, "node-c", memory="64Gi")
    down.status.conditions = [ready_condition("False")]
    client.update_status(down)
    _, (replica,) = make_instance(client, "huge", 1, requests={"memory": "4Gi"})
    scheduler = schedulers(context)
    result = scheduler.reconcile(Key.of(replica))
    assert result.requeue_after is not None and result.requeue_after > 0
    pending = client.get(Replica, "huge-0")
    message = "0/3 nodes are available: 2 insufficient memory, 1 not ready."
    assert pending.spec.nodeName is None
    assert pending.status.phase == "Pending"
    assert pending.status.reason == "Unschedulable"
    assert pending.status.message == message
    assert scheduler.events.flush(10)
    warnings = [e for e in client.list(Event)[0] if e.reason == "FailedScheduling"]
    assert [(w.type, w.message) for w in warnings] == [("Warning", message)]
    # Retrying with nothing changed writes nothing: the verdict and event stand.
    revision = client.store.current_revision()
    scheduler.reconcile(Key.of(replica))
    assert scheduler.events.flush(10)
    assert client.store.current_revision() == revision


def test_a_pending_replica_is_placed_once_a_node_fits(
    client: Client, context: ControllerContext, schedulers: SchedulerFactory
) -> None:
    make_node(client, "node-a", cpu="1")
    _, (replica,) = make_instance(client, "web", 1, requests={"cpu": "2"})
    scheduler = schedulers(context)
    scheduler.reconcile(Key.of(replica))
    assert client.get(Replica, "web-0").status.reason == "Unschedulable"
    make_node(client, "node-b", cpu="4")
    scheduler.reconcile(Key.of(replica))
    placed = client.get(Replica, "web-0")
    assert placed.spec.nodeName == "node-b"
    assert placed.status.reason is None
    assert any(c.type == "Scheduled" and c.status == "True" for c in placed.status.conditions)


def test_node_selector_and_cordon_are_respected(
    client: Client, context: ControllerContext, schedulers: SchedulerFactory
) -> None:
    make_node(client, "node-a", labels={"disk": "hdd"})
    make_node(client, "node-b", labels={"disk": "ssd"})
    cordoned = make_node(client, "node-c", labels={"disk": "ssd"})
    cordoned.spec.unschedulable = True
    client.update(cordoned)
    make_instance(client, "db", 3, placement={"nodeSelector": {"disk": "ssd"}})
    make_instance(client, "web", 2)
    schedule_all(schedulers(context), client)
    assert placement_of(client, "db") == {"node-b": 3}
    assert placement_of(client, "web") == {"node-a": 1, "node-b": 1}


def test_max_per_node_leaves_the_rest_pending(
    client: Client, context: ControllerContext, schedulers: SchedulerFactory
) -> None:
    make_node(client, "node-a")
    make_node(client, "node-b")
    make_instance(client, "web", 3, placement={"maxPerNode": 1})
    schedule_all(schedulers(context), client)
    assert placement_of(client) == {"node-a": 1, "node-b": 1, None: 1}
    pending = next(r for r in client.list(Replica)[0] if r.spec.nodeName is None)
    assert pending.status.message == "0/2 nodes are available: 2 maxPerNode reached."


def test_resources_of_bound_replicas_count_against_allocatable(
    client: Client, context: ControllerContext, schedulers: SchedulerFactory
) -> None:
    make_node(client, "node-a", cpu="2", memory="1Gi", pids=100)
    # Bound before this scheduler started (by an earlier leader, say): it must be counted.
    _, (old,) = make_instance(client, "old", 1, limits={"cpu": "1500m", "pids": 90})
    old.spec.nodeName = "node-a"
    client.update(old)
    _, (new,) = make_instance(client, "new", 1, requests={"cpu": "1"}, limits={"pids": 20})
    schedulers(context).reconcile(Key.of(new))
    pending = client.get(Replica, "new-0")
    assert pending.spec.nodeName is None
    assert pending.status.message == (
        "0/1 nodes are available: 1 insufficient cpu, 1 insufficient pids."
    )


def test_a_finished_or_deleted_replica_frees_its_room(
    client: Client, context: ControllerContext, schedulers: SchedulerFactory
) -> None:
    make_node(client, "node-a", cpu="1")
    _, (first, second) = make_instance(client, "web", 2, requests={"cpu": "1"})
    scheduler = schedulers(context)
    schedule_all(scheduler, client)
    assert placement_of(client) == {"node-a": 1, None: 1}
    client.delete(Replica, "web-0")
    scheduler.reconcile(Key.of(first))  # the deletion's own key: the books forget it
    scheduler.reconcile(Key.of(second))
    assert client.get(Replica, "web-1").spec.nodeName == "node-a"


def test_demand_falls_back_to_limits() -> None:
    instance = Instance.model_validate(
        {
            "metadata": {"name": "web"},
            "spec": {
                "command": ["x"],
                "resources": {
                    "requests": {"cpu": "250m"},
                    "limits": {"cpu": "1", "memory": "64Mi", "pids": 5},
                },
            },
        }
    )
    demand = demand_of(instance.spec.template())
    assert (demand.cpu, demand.memory, demand.pids) == (250, 64 * 1024 * 1024, 5)


def test_a_new_node_is_seen_through_the_node_mapper(
    client: Client, context: ControllerContext, schedulers: SchedulerFactory
) -> None:
    """With an informer, node changes arrive through the mapper, which hands back the
    pending replicas to retry."""
    _, (replica,) = make_instance(client, "web", 1)
    scheduler = schedulers(context)
    mapper = scheduler.watches()[Node]
    assert mapper(make_node(client, "node-x", cpu="1")) == []
    cordoned = client.get(Node, "node-x", None)
    cordoned.spec.unschedulable = True
    cordoned = client.update(cordoned)
    assert mapper(cordoned) == []
    scheduler.reconcile(Key.of(replica))
    assert client.get(Replica, "web-0").status.reason == "Unschedulable"
    assert mapper(make_node(client, "node-y")) == [Key.of(replica)]
    scheduler.reconcile(Key.of(replica))
    assert client.get(Replica, "web-0").spec.nodeName == "node-y"


class SharingLister(DirectLister[Replica]):
    """Hands out one object per replica from `peek`, as an informer hands out its cache."""

    def __init__(self, client: Client) -> None:
        super().__init__(client, Replica)
        self.shared: dict[tuple[str | None, str], Replica | None] = {}

    def peek(self, name: str, namespace: str | None = "default") -> Replica | None:
        if (namespace, name) not in self.shared:
            self.shared[(namespace, name)] = self.get(name, namespace)
        return self.shared[(namespace, name)]


def test_binding_and_marking_unschedulable_leave_the_shared_object_alone(
    client: Client, context: ControllerContext, schedulers: SchedulerFactory
) -> None:
    make_node(client, "node-a", cpu="1")
    _, (fits, too_big) = make_instance(client, "web", 2, requests={"cpu": "1"})
    lister = SharingLister(client)
    shared = ControllerContext(client, {**context.listers, Replica: lister}, context.recorder)
    scheduler = schedulers(shared)
    keys = [Key.of(fits), Key.of(too_big)]
    before = {key: lister.peek(key.name) for key in keys}
    copies = {key: obj.model_copy(deep=True) for key, obj in before.items() if obj is not None}
    for key in keys:
        scheduler.reconcile(key)
    assert placement_of(client) == {"node-a": 1, None: 1}
    assert client.get(Replica, "web-1").status.reason == "Unschedulable"
    assert len(copies) == 2
    for key, copy in copies.items():
        assert lister.peek(key.name) is before[key]
        assert before[key] == copy  # unchanged: the writes started from copies
