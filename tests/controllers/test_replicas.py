"""The replicas controller against a real store (SQLite and etcd): scaling, rolling updates
that keep enough replicas Ready at every single step, replacement of evicted replicas, status,
and crash safety of a scale-up (a client that dies after K writes, 20 different K)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import pytest

from constellation.apis.event import Event
from constellation.apis.instance import INSTANCE_LABEL, Instance, InstanceSpec, UpdateStrategy
from constellation.apis.meta import Resource
from constellation.apis.replica import Replica
from constellation.client.client import Client
from constellation.client.selector import Selector
from constellation.controllers.base import ControllerContext, Key, Lister, TerminalError
from constellation.controllers.replicas import (
    Budget,
    ReplicasReconciler,
    is_ready,
    owning_instance,
    template_hash,
)
from constellation.store import Store
from tests.controllers.conftest import direct_context
from tests.controllers.simulate import make_node, run_bound_replicas

R = TypeVar("R", bound=Resource)
T = TypeVar("T")
MAX_ROUNDS = 60


# -- helpers ---------------------------------------------------------------------------------


def make_instance(
    client: Client,
    replicas: int,
    strategy: dict[str, Any] | None = None,
    name: str = "web",
    namespace: str = "default",
    finalizers: tuple[str, ...] = (),
) -> Instance:
    spec: dict[str, Any] = {"command": ["/bin/sleep", "infinity"], "replicas": replicas}
    if strategy:
        spec["updateStrategy"] = strategy
    metadata = {
        "name": name,
        "namespace": namespace,
        "labels": {"app": name},
        "finalizers": list(finalizers),
    }
    return client.create(Instance.model_validate({"metadata": metadata, "spec": spec}))


def edit(client: Client, change: Callable[[InstanceSpec], None], name: str = "web") -> Instance:
    instance = client.get(Instance, name)
    change(instance.spec)
    return client.update(instance)


def scale(client: Client, replicas: int) -> Instance:
    def set_replicas(spec: InstanceSpec) -> None:
        spec.replicas = replicas

    return edit(client, set_replicas)


def new_version(spec: InstanceSpec) -> None:
    spec.args = ["v2"]


def replicas_of(client: Client, namespace: str = "default") -> list[Replica]:
    return sorted(client.list(Replica, namespace)[0], key=lambda r: r.spec.ordinal)


def names(replicas: list[Replica]) -> list[str]:
    return [r.metadata.name for r in replicas]


def ready_count(replicas: list[Replica]) -> int:
    return sum(1 for r in replicas if is_ready(r) and r.metadata.deletionTimestamp is None)


def bind_all(client: Client, node: str = "node-a") -> None:
    """The scheduler's part, reduced to "everything goes to one node"."""
    for replica in client.list(Replica)[0]:
        if replica.spec.nodeName is None and replica.metadata.deletionTimestamp is None:
            replica.spec.nodeName = node
            client.update(replica)


def settle(client: Client, reconciler: ReplicasReconciler, name: str = "web") -> None:
    """Reconcile, schedule, run, until a whole round writes nothing."""
    for _ in range(MAX_ROUNDS):
        before = client.store.current_revision()
        reconciler.reconcile(Key("default", name))
        bind_all(client)
        run_bound_replicas(client)
        if client.store.current_revision() == before:
            return
    raise AssertionError(f"no steady state after {MAX_ROUNDS} rounds")


def event_messages(client: Client, reason: str) -> set[str]:
    return {e.message for e in client.list(Event)[0] if e.reason == reason}


class Crash(Exception):
    """The controller process dying, at a chosen write."""


class FaultyClient(Client):
    """A real client that logs its writes and can die at write number `crash_at`, either
    before the write reaches the store or just after (the caller never learns it worked)."""

    def __init__(self, store: Store, crash_at: int | None = None, after: bool = True) -> None:
        super().__init__(store)
        self.crash_at = crash_at
        self.after = after
        self.writes: list[tuple[str, str]] = []
        self.dead = False
        # The controller writes from several threads: one at a time here, so that write
        # number K is well defined, and none after the crash, as in a process that died.
        self._one_at_a_time = threading.Lock()

    def _counted(self, op: str, name: str, write: Callable[[], T]) -> T:
        with self._one_at_a_time:
            number = len(self.writes) + 1
            if self.dead:
                raise Crash(f"dead before write {number}")
            self.dead = number == self.crash_at
            if self.dead and not self.after:
                raise Crash(f"before write {number}")
            result = write()
            self.writes.append((op, name))
            if self.dead:
                raise Crash(f"after write {number}")
            return result

    # Signatures pass through untouched, so this keeps up with the Client's own.
    def create(self, obj: R, *args: Any, **kwargs: Any) -> R:
        return self._counted(
            "create", obj.metadata.name, lambda: Client.create(self, obj, *args, **kwargs)
        )

    def update(self, obj: R) -> R:
        return self._counted("update", obj.metadata.name, lambda: Client.update(self, obj))

    def update_status(self, obj: R) -> R:
        return self._counted("status", obj.metadata.name, lambda: Client.update_status(self, obj))

    def delete(self, kind: type[R], name: str, *args: Any, **kwargs: Any) -> R | None:
        return self._counted(
            "delete", name, lambda: Client.delete(self, kind, name, *args, **kwargs)
        )

    def delete_unchanged(self, obj: R) -> R | None:
        if obj.metadata.finalizers or not obj.metadata.resourceVersion:
            return Client.delete_unchanged(self, obj)  # through `delete`, counted there
        return self._counted(
            "delete", obj.metadata.name, lambda: Client.delete_unchanged(self, obj)
        )


@pytest.fixture
def reconciler(context: ControllerContext) -> ReplicasReconciler:
    return ReplicasReconciler(context)


@pytest.fixture
def node(client: Client) -> Iterator[None]:
    make_node(client, "node-a")
    yield


# -- scaling ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("node")
def test_scale_0_5_2_0(client: Client, reconciler: ReplicasReconciler) -> None:
    make_instance(client, replicas=0)
    settle(client, reconciler)
    assert replicas_of(client) == []

    instance = scale(client, 5)
    settle(client, reconciler)
    replicas = replicas_of(client)
    assert names(replicas) == [f"web-{i}" for i in range(5)]
    expected_hash = template_hash(instance.spec.template())
    for ordinal, replica in enumerate(replicas):
        (ref,) = replica.metadata.ownerReferences
        assert (ref.kind, ref.name, ref.uid) == ("Instance", "web", instance.metadata.uid)
        assert ref.controller and ref.blockOwnerDeletion
        assert replica.metadata.labels == {"app": "web", INSTANCE_LABEL: "web"}
        assert replica.spec.ordinal == ordinal and replica.spec.instanceName == "web"
        assert replica.spec.template == instance.spec.template()
        assert replica.spec.templateHash == expected_hash

    scale(client, 2)
    logged = FaultyClient(client.store)
    ReplicasReconciler(direct_context(logged)).reconcile(Key("default", "web"))
    deletes = [name for op, name in logged.writes if op == "delete"]
    # Highest ordinals go; the first alone (slow start), then web-3 and web-2 together.
    assert deletes[0] == "web-4" and sorted(deletes[1:]) == ["web-2", "web-3"]
    assert names(replicas_of(client)) == ["web-0", "web-1"]

    scale(client, 0)
    settle(client, reconciler)
    assert replicas_of(client) == []
    assert event_messages(client, "ScalingUp") == {"scaled up to 5"}
    assert event_messages(client, "ScalingDown") == {"scaled down to 2", "scaled down to 0"}


@pytest.mark.usefixtures("node")
def test_status_counts_and_conditions(client: Client, reconciler: ReplicasReconciler) -> None:
    instance = make_instance(client, replicas=3)
    reconciler.reconcile(Key("default", "web"))
    status = client.get(Instance, "web").status
    assert (status.replicas, status.readyReplicas, status.updatedReplicas) == (3, 0, 3)
    assert status.observedGeneration == instance.metadata.generation
    assert conditions(client) == {
        "Available": ("False", "MinimumReplicasUnavailable"),
        "Progressing": ("True", "WaitingForReady"),
    }

    settle(client, reconciler)
    status = client.get(Instance, "web").status
    assert (status.replicas, status.readyReplicas, status.availableReplicas) == (3, 3, 3)
    assert conditions(client) == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("False", "Complete"),
    }
    # Level-based and idempotent: at steady state a reconcile writes nothing at all.
    before = client.store.current_revision()
    reconciler.reconcile(Key("default", "web"))
    assert client.store.current_revision() == before

    set_ready(client, "web-0", False)
    reconciler.reconcile(Key("default", "web"))
    assert client.get(Instance, "web").status.readyReplicas == 2
    assert conditions(client)["Available"] == ("True", "MinimumReplicasAvailable")  # 2 >= 3 - 1
    set_ready(client, "web-1", False)
    reconciler.reconcile(Key("default", "web"))
    assert conditions(client)["Available"] == ("False", "MinimumReplicasUnavailable")


def conditions(client: Client) -> dict[str, tuple[str, str]]:
    status = client.get(Instance, "web").status
    return {c.type: (c.status, c.reason) for c in status.conditions}


def set_ready(client: Client, name: str, ready: bool) -> None:
    replica = client.get(Replica, name)
    (condition,) = replica.status.conditions
    condition.status = "True" if ready else "False"
    client.update_status(replica)


# -- rolling updates -------------------------------------------------------------------------


@pytest.mark.usefixtures("node")
@pytest.mark.parametrize(("max_unavailable", "max_surge"), [(1, 0), (0, 1), ("25%", "25%"), (2, 0)])
def test_rolling_update_never_drops_below_the_budget(
    client: Client,
    reconciler: ReplicasReconciler,
    max_unavailable: int | str,
    max_surge: int | str,
) -> None:
    strategy = {"maxUnavailable": max_unavailable, "maxSurge": max_surge}
    make_instance(client, replicas=4, strategy=strategy)
    settle(client, reconciler)
    updated = edit(client, new_version)
    budget = Budget.of(4, UpdateStrategy.model_validate(strategy))
    new_hash = template_hash(updated.spec.template())
    steps: list[Callable[[], object]] = [
        lambda: reconciler.reconcile(Key("default", "web")),
        lambda: bind_all(client),
        lambda: run_bound_replicas(client),
    ]
    seen: set[str] = set()
    for _ in range(MAX_ROUNDS):
        for step in steps:
            step()
            replicas = replicas_of(client)
            seen.update(names(replicas))
            assert ready_count(replicas) >= 4 - budget.max_unavailable, names(replicas)
            assert len(replicas) <= 4 + budget.max_surge
        if rolled_out(replicas, new_hash):
            break
    else:
        raise AssertionError(f"roll did not finish in {MAX_ROUNDS} rounds")
    # Surge is spare ordinals above N-1, gone again once the roll is through.
    assert ("web-4" in seen) == (budget.max_surge > 0)
    settle(client, reconciler)
    status = client.get(Instance, "web").status
    assert (status.replicas, status.updatedReplicas, status.readyReplicas) == (4, 4, 4)
    assert conditions(client)["Progressing"] == ("False", "Complete")
    assert event_messages(client, "RolloutComplete")


def rolled_out(replicas: list[Replica], new_hash: str) -> bool:
    return names(replicas) == [f"web-{i}" for i in range(4)] and all(
        r.spec.templateHash == new_hash and is_ready(r) for r in replicas
    )


@pytest.mark.usefixtures("node")
@pytest.mark.parametrize(("max_unavailable", "max_surge"), [(1, 0), (0, 1)])
def test_rolling_update_waits_for_each_new_replica_to_be_ready(
    client: Client, reconciler: ReplicasReconciler, max_unavailable: int, max_surge: int
) -> None:
    strategy = {"maxUnavailable": max_unavailable, "maxSurge": max_surge}
    make_instance(client, replicas=4, strategy=strategy)
    settle(client, reconciler)
    new_hash = template_hash(edit(client, new_version).spec.template())
    for _ in range(5):  # the new replica runs but never becomes Ready
        reconciler.reconcile(Key("default", "web"))
        bind_all(client)
        start_unready(client)
    replicas = replicas_of(client)
    fresh = [r.metadata.name for r in replicas if r.spec.templateHash == new_hash]
    assert fresh == (["web-3"] if max_surge == 0 else ["web-4"])
    assert ready_count(replicas) == 4 - max_unavailable
    assert conditions(client)["Progressing"] == ("True", "RollingUpdate")


def start_unready(client: Client) -> None:
    """An agent starting bound replicas whose readiness probe keeps failing."""
    for replica in client.list(Replica)[0]:
        if replica.spec.nodeName and replica.status.phase == "Pending":
            replica.status.phase = "Running"
            client.update_status(replica)


@pytest.mark.usefixtures("node")
def test_recreate_deletes_every_old_replica_before_creating_new_ones(
    client: Client, reconciler: ReplicasReconciler
) -> None:
    make_instance(client, replicas=3, strategy={"type": "Recreate"})
    settle(client, reconciler)
    new_hash = template_hash(edit(client, new_version).spec.template())
    reconciler.reconcile(Key("default", "web"))
    assert replicas_of(client) == []
    settle(client, reconciler)
    replicas = replicas_of(client)
    assert names(replicas) == ["web-0", "web-1", "web-2"]
    assert {r.spec.templateHash for r in replicas} == {new_hash}


# -- failures, deletion, adoption ------------------------------------------------------------


@pytest.mark.usefixtures("node")
@pytest.mark.parametrize("reason", ["Evicted", "NodeLost"])
def test_failed_replica_is_replaced_unbound(
    client: Client, reconciler: ReplicasReconciler, reason: str
) -> None:
    make_instance(client, replicas=3)
    settle(client, reconciler)
    lost = client.get(Replica, "web-1")
    lost.status.phase = "Failed"
    lost.status.reason = reason
    client.update_status(lost)
    reconciler.reconcile(Key("default", "web"))
    replaced = client.get(Replica, "web-1")
    assert replaced.metadata.uid != lost.metadata.uid
    assert replaced.spec.nodeName is None and replaced.status.phase == "Pending"
    assert names(replicas_of(client)) == ["web-0", "web-1", "web-2"]
    assert any("web-1 failed" in m for m in event_messages(client, "ReplacingFailed"))


@pytest.mark.usefixtures("node")
def test_many_failed_at_once_are_reported_in_one_event(
    client: Client, reconciler: ReplicasReconciler
) -> None:
    make_instance(client, replicas=14)
    settle(client, reconciler)
    for replica in replicas_of(client)[:12]:
        replica.status.phase = "Failed"
        replica.status.reason = "NodeLost"
        client.update_status(replica)
    reconciler.reconcile(Key("default", "web"))
    (message,) = event_messages(client, "ReplacingFailed")
    assert message.startswith("replacing 12 failed: ") and message.endswith("; and 2 more")
    assert message.count("failed (NodeLost)") == 10
    assert len({r.metadata.uid for r in replicas_of(client)}) == 14


def test_instance_being_deleted_gets_no_replicas(
    client: Client, reconciler: ReplicasReconciler
) -> None:
    make_instance(client, replicas=3, finalizers=("example.com/hold",))
    client.delete(Instance, "web")
    reconciler.reconcile(Key("default", "web"))
    assert replicas_of(client) == []


def test_orphan_with_the_instance_name_is_adopted(
    client: Client, reconciler: ReplicasReconciler
) -> None:
    instance = make_instance(client, replicas=1)
    orphan = Replica.model_validate(
        {
            "metadata": {"name": "web-0"},
            "spec": {"instanceName": "web", "ordinal": 0, "template": {"command": ["true"]}},
        }
    )
    orphan = client.create(orphan)
    assert owning_instance(orphan) == [Key("default", "web")]
    reconciler.reconcile(Key("default", "web"))
    adopted = client.get(Replica, "web-0")
    assert [ref.uid for ref in adopted.metadata.ownerReferences] == [instance.metadata.uid]
    assert owning_instance(adopted) == [Key("default", "web")]


def test_too_long_a_name_is_a_terminal_error_with_a_condition(
    client: Client, reconciler: ReplicasReconciler
) -> None:
    name = "w" * 62
    make_instance(client, replicas=12, name=name)
    with pytest.raises(TerminalError, match="shorter Instance name"):
        reconciler.reconcile(Key("default", name))
    status = client.get(Instance, name).status
    assert [(c.type, c.reason) for c in status.conditions] == [("ReplicaFailure", "InvalidName")]
    assert replicas_of(client) == []


def test_percentages_resolve_as_kubernetes_does() -> None:
    strategy = UpdateStrategy(maxUnavailable="25%", maxSurge="25%")
    assert Budget.of(10, strategy) == Budget(10, 2, 3)  # unavailable rounds down, surge up
    assert Budget.of(1, strategy) == Budget(1, 0, 1)
    assert Budget.of(0, UpdateStrategy(maxUnavailable="0%", maxSurge="10%")).max_unavailable == 1


# -- crash safety ----------------------------------------------------------------------------


class StaleLister:
    """An informer cache that has not caught up: it still shows `objects`, whatever the
    store holds now. Writes made from this view must still not duplicate anything."""

    def __init__(self, objects: Sequence[Replica]) -> None:
        self._objects = list(objects)

    def get(self, name: str, namespace: str | None = "default") -> Replica | None:
        return next((o for o in self._objects if o.key_parts()[1:] == (namespace, name)), None)

    def list(self, namespace: str | None = None, selector: Selector | None = None) -> list[Replica]:
        return [o for o in self._objects if namespace in (None, o.metadata.namespace)]


def stale_context(client: Client, replicas: Sequence[Replica]) -> ControllerContext:
    context = direct_context(client)
    listers: dict[type[Resource], Lister[Resource]] = dict(context.listers)
    listers[Replica] = StaleLister(replicas)
    return dataclasses.replace(context, listers=listers)


def test_scale_up_interrupted_anywhere_converges_to_exactly_50(client: Client) -> None:
    """20 scale-ups of 50, each killed at a different write (before or after it reaches the
    store), then killed again early in a restart that reads from a cache still showing no
    replicas. A run on that stale cache must end with exactly web-0..49 (creating a name
    that exists is harmless), keep every replica that already existed, and duplicate none."""
    for run in range(20):
        namespace = f"crash-{run}"
        make_instance(client, replicas=50, namespace=namespace)
        key = Key(namespace, "web")
        crash_at = 1 + run * 52 // 20  # 50 creates, an event and a status write
        after = run % 2 == 0
        with pytest.raises(Crash):
            faulty = FaultyClient(client.store, crash_at=crash_at, after=after)
            ReplicasReconciler(direct_context(faulty)).reconcile(key)
        with pytest.raises(Crash):
            faulty = FaultyClient(client.store, crash_at=1 + run % 2, after=after)
            ReplicasReconciler(stale_context(faulty, [])).reconcile(key)
        survivors = {r.metadata.name: r.metadata.uid for r in replicas_of(client, namespace)}
        assert 0 < len(survivors) < 50 or crash_at > 48

        ReplicasReconciler(stale_context(client, [])).reconcile(key)
        replicas = replicas_of(client, namespace)
        assert names(replicas) == [f"web-{i}" for i in range(50)], run
        uids = [r.metadata.uid for r in replicas]
        assert len(set(uids)) == 50
        kept = {r.metadata.name: r.metadata.uid for r in replicas if r.metadata.name in survivors}
        assert kept == survivors

        ReplicasReconciler(direct_context(client)).reconcile(key)
        assert [r.metadata.uid for r in replicas_of(client, namespace)] == uids
        assert client.get(Instance, "web", namespace).status.replicas == 50
