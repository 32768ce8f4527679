"""Garbage collection against a real store (SQLite and etcd): deleting an owner deletes its
dependents in the background or in the foreground, orphaning keeps them, and finalizers on
either side are honoured. Replicas are written directly with ownerReferences, so these tests
depend on no other controller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from constellation.apis.event import Event
from constellation.apis.instance import Instance
from constellation.apis.meta import OwnerReference
from constellation.apis.registry import ALL_KINDS
from constellation.apis.replica import Replica
from constellation.client.client import FOREGROUND_FINALIZER, ORPHAN_FINALIZER, Client
from constellation.controllers import gc as gc_module
from constellation.controllers.base import ControllerContext, Key
from constellation.controllers.gc import GarbageCollector
from constellation.controllers.manager import ControllerManager
from constellation.controllers.metrics import Metrics
from constellation.store import Conflict

HOLD = "example.com/hold"


def instance(client: Client, name: str = "web") -> Instance:
    return client.create(
        Instance.model_validate({"metadata": {"name": name}, "spec": {"command": ["sleep"]}})
    )


def owner_ref(owner: Instance, block: bool = True) -> OwnerReference:
    assert owner.metadata.uid is not None
    return OwnerReference(
        kind="Instance",
        name=owner.metadata.name,
        uid=owner.metadata.uid,
        controller=True,
        blockOwnerDeletion=block,
    )


def replica(
    client: Client, name: str, *owners: Instance, finalizers: tuple[str, ...] = ()
) -> Replica:
    obj = Replica.model_validate(
        {
            "metadata": {"name": name, "finalizers": list(finalizers)},
            "spec": {"instanceName": "web", "ordinal": 0, "template": {"command": ["sleep"]}},
        }
    )
    obj.metadata.ownerReferences = [owner_ref(owner) for owner in owners]
    return client.create(obj)


def replicas_of(client: Client, owner: Instance, count: int = 3) -> list[Replica]:
    return [replica(client, f"{owner.metadata.name}-{i}", owner) for i in range(count)]


def collect(client: Client, gc: GarbageCollector, max_rounds: int = 20) -> None:
    """Reconcile every object's key, of every kind, until a round changes nothing: the
    collector's keys stand for objects of any kind (simulate.converge lists only KIND)."""
    for _ in range(max_rounds):
        before = client.store.current_revision()
        for kind in ALL_KINDS:
            for obj in client.list(kind)[0]:
                gc.reconcile(Key.of(obj))
        if client.store.current_revision() == before:
            return
    raise AssertionError(f"garbage collection did not settle in {max_rounds} rounds")


def names(client: Client) -> list[str]:
    return sorted(r.metadata.name for r in client.list(Replica)[0])


@pytest.fixture
def gc(context: ControllerContext) -> GarbageCollector:
    return GarbageCollector(context)


def test_background_deletion_collects_the_dependents(client: Client, gc: GarbageCollector) -> None:
    web = instance(client)
    replicas_of(client, web)
    other = instance(client, "api")
    replicas_of(client, other, 1)
    collect(client, gc)
    assert names(client) == ["api-0", "web-0", "web-1", "web-2"]  # live owners: nothing to do
    assert client.delete(Instance, "web") is None  # background: the owner goes at once
    collect(client, gc)
    assert names(client) == ["api-0"]


def test_foreground_deletion_keeps_the_owner_until_its_dependents_are_gone(
    client: Client, gc: GarbageCollector
) -> None:
    web = instance(client)
    replicas_of(client, web)
    marked = client.delete(Instance, "web", propagation="Foreground")
    assert marked is not None and marked.metadata.deletionTimestamp is not None
    assert marked.metadata.finalizers == [FOREGROUND_FINALIZER]
    gc.reconcile(Key.of(web))
    # Foreground all the way down (as Kubernetes): each dependent is itself marked, to go
    # after its own dependents.
    for dependent in client.list(Replica)[0]:
        assert dependent.metadata.finalizers == [FOREGROUND_FINALIZER]
        gc.reconcile(Key.of(dependent))
    assert names(client) == []
    assert client.get(Instance, "web").metadata.deletionTimestamp is not None
    gc.reconcile(Key.of(web))
    assert client.find(Instance, "web") is None


def test_a_dependent_finalizer_holds_a_foreground_deletion(
    client: Client, gc: GarbageCollector
) -> None:
    web = instance(client)
    held = replica(client, "web-0", web, finalizers=(HOLD,))
    replica(client, "web-1", web)
    client.delete(Instance, "web", propagation="Foreground")
    collect(client, gc)
    held = client.get(Replica, "web-0")
    assert held.metadata.deletionTimestamp is not None and held.metadata.finalizers == [HOLD]
    owner = client.get(Instance, "web")
    assert owner.metadata.finalizers == [FOREGROUND_FINALIZER]
    held.metadata.finalizers = []  # e.g. the agent has stopped the process
    client.update(held)
    collect(client, gc)
    assert client.find(Instance, "web") is None
    assert names(client) == []


def test_foreground_deletion_of_an_owner_without_dependents(
    client: Client, gc: GarbageCollector
) -> None:
    instance(client)
    client.delete(Instance, "web", propagation="Foreground")
    collect(client, gc)
    assert client.find(Instance, "web") is None


def test_orphan_deletion_keeps_the_dependents_without_the_reference(
    client: Client, gc: GarbageCollector
) -> None:
    web = instance(client)
    replicas_of(client, web)
    api = instance(client, "api")
    shared = replica(client, "shared", web, api)
    marked = client.delete(Instance, "web", propagation="Orphan")
    assert marked is not None and marked.metadata.finalizers == [ORPHAN_FINALIZER]
    collect(client, gc)
    assert client.find(Instance, "web") is None
    assert names(client) == ["shared", "web-0", "web-1", "web-2"]
    for name in ("web-0", "web-1", "web-2"):
        assert client.get(Replica, name).metadata.ownerReferences == []
    assert client.get(Replica, "shared").metadata.ownerReferences == [owner_ref(api)]
    assert shared.metadata.uid == client.get(Replica, "shared").metadata.uid


def test_an_owner_recreated_under_the_same_name_is_not_the_owner(
    client: Client, gc: GarbageCollector
) -> None:
    old = instance(client)
    replicas_of(client, old)
    client.delete(Instance, "web")
    new = instance(client)
    assert new.metadata.uid != old.metadata.uid
    collect(client, gc)
    assert names(client) == []
    assert client.get(Instance, "web").metadata.uid == new.metadata.uid


def test_a_dependent_lives_while_any_owner_does(client: Client, gc: GarbageCollector) -> None:
    first, second = instance(client, "first"), instance(client, "second")
    replica(client, "shared", first, second)
    client.delete(Instance, "first")
    collect(client, gc)
    survivor = client.get(Replica, "shared")
    assert survivor.metadata.ownerReferences == [owner_ref(second)]  # the gone one dropped
    client.delete(Instance, "second")
    collect(client, gc)
    assert names(client) == []


def test_a_foreground_owner_does_not_wait_for_a_dependent_another_owner_keeps(
    client: Client, gc: GarbageCollector
) -> None:
    first, second = instance(client, "first"), instance(client, "second")
    replica(client, "shared", first, second)
    client.delete(Instance, "first", propagation="Foreground")
    collect(client, gc)
    assert client.find(Instance, "first") is None
    assert client.get(Replica, "shared").metadata.ownerReferences == [owner_ref(second)]


def test_an_unknown_owner_kind_is_never_taken_for_gone(
    client: Client, gc: GarbageCollector
) -> None:
    obj = replica(client, "stray")
    obj.metadata.ownerReferences = [OwnerReference(kind="Database", name="db", uid="u-1")]
    client.update(obj)
    collect(client, gc)
    assert names(client) == ["stray"]


def test_changes_are_mapped_only_to_keys_with_work(client: Client, gc: GarbageCollector) -> None:
    web = instance(client)
    dependent = replica(client, "web-0", web)
    assert set(gc.watches()) == set(ALL_KINDS) - {Event}  # events are never owned
    assert set(gc.affected_keys(web)) == set()  # a live owner: nothing to collect
    assert set(gc.affected_keys(dependent)) == {Key("default", "web-0")}
    marked = client.delete(Instance, "web", propagation="Foreground")
    assert marked is not None
    assert set(gc.affected_keys(marked)) == {Key("default", "web"), Key("default", "web-0")}
    client.delete(Replica, "web-0")  # a foreground owner waits for its dependents to go
    assert set(gc.affected_keys(dependent)) == {Key("default", "web")}


def test_a_cascade_that_is_not_a_policy_is_refused(client: Client) -> None:
    instance(client)
    with pytest.raises(ValueError, match="unknown propagation"):
        client.delete(Instance, "web", propagation="Sideways")  # type: ignore[arg-type]
    assert client.find(Instance, "web") is not None


@pytest.fixture
def running_gc(client: Client) -> Iterator[ControllerManager]:
    """The collector run by the real manager: informer caches and watches, not direct reads."""
    manager = ControllerManager(
        client.store, reconciler_classes=[GarbageCollector], metrics=Metrics()
    )
    runner = threading.Thread(target=manager.run, name="gc-manager-under-test")
    runner.start()
    try:
        wait_until(lambda: bool(manager.controllers) and manager.is_leader, "leadership")
        yield manager
    finally:
        manager.stop()
        runner.join(15)


def edit_replica(client: Client, name: str, change: Callable[[Replica], None], what: str) -> None:
    """Change a replica as a user or an agent would: re-read on Conflict, since the running
    collector writes the same object."""
    for _ in range(20):
        replica = client.get(Replica, name)
        change(replica)
        try:
            client.update(replica)
            return
        except Conflict:
            continue
    raise AssertionError(f"could not {what} on {name}")


def release_hold(client: Client, name: str) -> None:
    """Remove HOLD as its owner (an agent, say) would."""

    def drop_hold(held: Replica) -> None:
        held.metadata.finalizers = [f for f in held.metadata.finalizers if f != HOLD]

    edit_replica(client, name, drop_hold, f"remove {HOLD}")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_the_running_collector_reacts_to_deletes_through_its_watches(
    client: Client, running_gc: ControllerManager
) -> None:
    web, api = instance(client), instance(client, "api")
    replicas_of(client, api)
    replica(client, "web-0", web, finalizers=(HOLD,))
    replica(client, "web-1", web)
    client.delete(Instance, "api")
    wait_until(lambda: names(client) == ["web-0", "web-1"], "api's replicas to be collected")
    client.delete(Instance, "web", propagation="Foreground")
    wait_until(lambda: names(client) == ["web-0"], "web-1 to go, web-0 to be held")
    assert client.get(Replica, "web-0").metadata.deletionTimestamp is not None
    assert client.find(Instance, "web") is not None
    release_hold(client, "web-0")
    wait_until(lambda: client.find(Instance, "web") is None, "the owner to go after its dependents")
    assert names(client) == []


def test_a_foreground_owner_released_by_hand_goes_without_a_watch_event_naming_it(
    client: Client, running_gc: ControllerManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removing the ownerReference from the dependent that holds the owner changes only the
    dependent, which names the owner no more: the waiting owner finds out by looking again."""
    monkeypatch.setattr(gc_module, "FOREGROUND_RECHECK_SECONDS", 0.5)
    web = instance(client)
    replica(client, "web-0", web, finalizers=(HOLD,))
    client.delete(Instance, "web", propagation="Foreground")
    wait_until(
        lambda: client.get(Replica, "web-0").metadata.deletionTimestamp is not None,
        "web-0 to be deleted and held by its finalizer",
    )

    def drop_owners(held: Replica) -> None:
        held.metadata.ownerReferences = []

    edit_replica(client, "web-0", drop_owners, "remove the ownerReferences")
    wait_until(lambda: client.find(Instance, "web") is None, "the released owner to go", 5.0)
    assert names(client) == ["web-0"]  # released, not collected: its own finalizer holds it
    release_hold(client, "web-0")
