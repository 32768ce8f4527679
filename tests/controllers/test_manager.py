"""The manager runs its reconcilers while leading: a created object is reconciled within a
bounded time, and stopping it leaves no thread behind and the lease released."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import ClassVar

from constellation.apis.event import Event
from constellation.apis.instance import Instance
from constellation.apis.meta import Resource
from constellation.apis.replica import Replica
from constellation.client.client import Client
from constellation.controllers.base import ControllerContext, DirectLister, Key, Mapper, Result
from constellation.controllers.gc import OWNED_KINDS, GarbageCollector
from constellation.controllers.informer import Informer
from constellation.controllers.leader import LEASE_KEY
from constellation.controllers.manager import ControllerManager, default_reconcilers
from constellation.controllers.metrics import Metrics
from tests.controllers.test_informer import instance, wait_for
from tests.controllers.test_scheduler import add_replica

SEEN = "test.constellation.dev/seen-generation"


class Observe:
    """Writes the generation it saw into an annotation: a visible, idempotent reaction."""

    NAME: ClassVar[str] = "observe"
    KIND: ClassVar[type[Resource]] = Instance

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx

    def watches(self) -> Mapping[type[Resource], Mapper]:
        return {}

    def reconcile(self, key: Key) -> Result:
        obj = self.ctx.lister(Instance).get(key.name, key.namespace)
        if obj is None or obj.metadata.annotations.get(SEEN) == str(obj.metadata.generation):
            return Result()
        obj.metadata.annotations[SEEN] = str(obj.metadata.generation)
        self.ctx.client.update(obj)
        return Result()


def seen(client: Client, name: str) -> str | None:
    found = client.find(Instance, name)
    return found.metadata.annotations.get(SEEN) if found else None


def test_manager_reacts_to_a_created_object_and_stops_cleanly(client: Client) -> None:
    before = set(threading.enumerate())
    metrics = Metrics()
    manager = ControllerManager(client.store, reconciler_classes=[Observe], metrics=metrics)
    runner = threading.Thread(target=manager.run, name="manager-under-test")
    runner.start()
    try:
        wait_for(lambda: bool(manager.controllers) and manager.is_leader, 10, "leadership")
        created = time.monotonic()
        web = client.create(instance("web"))
        wait_for(lambda: seen(client, "web") == "1", 5, "the reaction to a create")
        reaction = time.monotonic() - created
        print(f"create -> reconciled in {reaction * 1000:.0f} ms")
        assert reaction < 2.0

        web = client.get(Instance, "web")
        web.spec.replicas = 4
        client.update(web)
        wait_for(lambda: seen(client, "web") == "2", 5, "the reaction to an update")
        # Counted once reconcile has returned, a moment after its write was seen.
        wait_for(lambda: metrics.outcomes("observe")["success"] >= 2, 5, "both calls counted")
        outcomes = metrics.outcomes("observe")
        assert outcomes["error"] == 0 and outcomes["success"] >= 2
    finally:
        manager.stop()
        runner.join(15)
    assert not runner.is_alive()
    assert client.store.get(LEASE_KEY) is None
    wait_for(lambda: not _new_threads(before), 5, "the manager's threads to end")


def _new_threads(before: set[threading.Thread]) -> list[str]:
    # The store's own threads (watch hubs, grpc) were there before or are not ours.
    return [
        t.name
        for t in threading.enumerate()
        if t not in before and t.name.split("-")[0] in {"informer", "observe", "leader"}
    ]


def test_default_reconcilers_are_the_modules_that_exist() -> None:
    classes = default_reconcilers()
    names = {cls.__name__ for cls in classes}
    assert names <= {"ReplicasReconciler", "Scheduler", "NodeLifecycle", "GarbageCollector"}
    for cls in classes:
        assert cls.NAME and cls.KIND  # type: ignore[attr-defined]


def test_only_watched_kinds_are_cached_and_cached_replicas_share_templates(
    client: Client,
) -> None:
    web = client.create(instance("web"))
    replicas = [add_replica(client, web, ordinal) for ordinal in range(2)]
    manager = ControllerManager(client.store, reconciler_classes=[GarbageCollector, Observe])
    runner = threading.Thread(target=manager.run, name="manager-under-test")
    runner.start()
    try:
        wait_for(lambda: bool(manager.controllers) and manager.is_leader, 10, "leadership")
        listers = manager.controllers[0].ctx.listers
        assert isinstance(listers[Event], DirectLister)  # no controller watches events
        assert {kind for kind, lister in listers.items() if isinstance(lister, Informer)} == set(
            OWNED_KINDS
        )
        cache = listers[Replica]
        assert isinstance(cache, Informer)
        wait_for(lambda: len(cache.list()) == 2, 10, "the replicas' list")
        first, second = (cache.peek(r.metadata.name) for r in replicas)
        assert first is not None and second is not None
        assert first.spec.template is second.spec.template
    finally:
        manager.stop()
        runner.join(15)
    assert not runner.is_alive()
