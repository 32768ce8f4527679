"""The runner turns reconcile outcomes into requeues: errors back off, terminal errors stop,
overruns are counted as timeouts and retried, requeue_after is honoured. A tiny reconciler of
this file's own runs over the real store, fed by a real informer."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import pytest

from constellation.apis.instance import Instance
from constellation.apis.meta import Resource
from constellation.apis.replica import Replica
from constellation.client.client import Client
from constellation.controllers.base import (
    ControllerContext,
    Key,
    Mapper,
    Result,
    Settings,
    TerminalError,
)
from constellation.controllers.informer import Informer
from constellation.controllers.metrics import Metrics
from constellation.controllers.runner import Controller
from constellation.controllers.workqueue import WorkQueue
from tests.controllers.conftest import direct_context
from tests.controllers.test_informer import instance, wait_for

Behaviour = Callable[[int], Result]
"""What the reconciler does on its n-th call (0-based) for a key."""


class Scripted:
    """Records every call and acts out `behaviour`."""

    NAME: ClassVar[str] = "scripted"
    KIND: ClassVar[type[Resource]] = Instance

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.lock = threading.Lock()
        self.calls: list[tuple[Key, float, float]] = []  # key, started, ended
        self.running: set[Key] = set()
        self.overlaps = 0

    def watches(self) -> Mapping[type[Resource], Mapper]:
        return {Replica: lambda obj: [Key("default", obj.metadata.labels.get("owner", "-"))]}

    def reconcile(self, key: Key) -> Result:
        with self.lock:
            n = sum(1 for k, _, _ in self.calls if k == key)
            self.overlaps += key in self.running
            self.running.add(key)
            started = time.monotonic()
        try:
            return self.behaviour(n)
        finally:
            with self.lock:
                self.running.discard(key)
                self.calls.append((key, started, time.monotonic()))

    def starts(self) -> list[float]:
        with self.lock:
            return sorted(started for _, started, _ in self.calls)


class Rig:
    def __init__(self, client: Client, settings: Settings, base_delay: float) -> None:
        self.client = client
        self.metrics = Metrics()
        self.context: ControllerContext = direct_context(client, settings)
        self.informers: dict[type[Resource], Informer[Any]] = {
            kind: Informer(client, kind, metrics=self.metrics) for kind in (Instance, Replica)
        }
        self.base_delay = base_delay
        self.controller: Controller | None = None

    def run(self, reconciler: Scripted, workers: int = 2) -> Controller:
        queue = WorkQueue(base_delay=self.base_delay, max_delay=5.0)
        self.controller = Controller(
            reconciler, self.context, self.informers, workers, queue=queue, metrics=self.metrics
        )
        for informer in self.informers.values():
            informer.start()
        self.controller.start()
        return self.controller

    def outcomes(self) -> dict[str, int]:
        return self.metrics.outcomes("scripted")

    def close(self) -> None:
        if self.controller is not None:
            self.controller.stop(timeout=5)
            assert self.controller.alive_workers == 0
        for informer in self.informers.values():
            informer.stop()


def owned_replica(owner: Instance, ordinal: int) -> Replica:
    return Replica.model_validate(
        {
            "metadata": {
                "name": f"{owner.metadata.name}-{ordinal}",
                "labels": {"owner": owner.metadata.name},
            },
            "spec": {
                "instanceName": owner.metadata.name,
                "ordinal": ordinal,
                "template": owner.spec.template(),
            },
        }
    )


@pytest.fixture
def rig(client: Client) -> Iterator[Rig]:
    made = Rig(client, Settings(reconcile_timeout_seconds=0.3), base_delay=0.05)
    yield made
    made.close()


def test_errors_requeue_with_growing_backoff_until_success(rig: Rig) -> None:
    def fail_three_times(n: int) -> Result:
        if n < 3:
            raise RuntimeError(f"failure {n}")
        return Result()

    reconciler = Scripted(fail_three_times)
    rig.run(reconciler)
    rig.client.create(instance("web"))
    wait_for(lambda: rig.outcomes()["success"] == 1, what="the fourth call to succeed")
    starts = reconciler.starts()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 4
    for gap, backoff in zip(gaps, [0.05, 0.1, 0.2], strict=True):
        assert gap >= backoff * 0.9, gaps
    assert rig.outcomes() == {**rig.outcomes(), "error": 3, "success": 1}
    assert (
        rig.controller is not None and rig.controller.queue.num_requeues(Key("default", "web")) == 0
    )


def test_terminal_error_is_not_retried(rig: Rig) -> None:
    def terminal(n: int) -> Result:
        raise TerminalError("spec.image names nothing")

    reconciler = Scripted(terminal)
    rig.run(reconciler)
    rig.client.create(instance("web"))
    wait_for(lambda: rig.outcomes()["terminal"] == 1, what="the terminal error")
    time.sleep(0.5)  # ten backoff periods: a retry would have happened by now
    assert len(reconciler.calls) == 1
    assert rig.outcomes()["error"] == 0


def test_an_overrun_counts_as_timeout_and_is_retried_after_it_returns(rig: Rig) -> None:
    def slow_first(n: int) -> Result:
        if n == 0:
            time.sleep(1.0)  # the timeout is 0.3 s
        return Result()

    reconciler = Scripted(slow_first)
    rig.run(reconciler, workers=4)
    started = time.monotonic()
    rig.client.create(instance("web"))
    wait_for(lambda: rig.outcomes()["timeout"] == 1, what="the timeout")
    assert time.monotonic() - started < 0.9  # counted at the deadline, not when it returned
    # The other workers stay free: another key is reconciled while the overrun goes on.
    rig.client.create(instance("db"))
    wait_for(lambda: any(k.name == "db" for k, _, _ in reconciler.calls), 2, "db meanwhile")
    wait_for(lambda: rig.outcomes()["success"] >= 2, what="the retry of web")
    web_calls = sorted((s, e) for k, s, e in reconciler.calls if k.name == "web")
    assert len(web_calls) == 2
    assert web_calls[1][0] >= web_calls[0][1]  # the retry began after the overrun ended
    assert reconciler.overlaps == 0


def test_requeue_after_is_honoured(rig: Rig) -> None:
    def again_soon(n: int) -> Result:
        return Result(requeue_after=0.4) if n == 0 else Result()

    reconciler = Scripted(again_soon)
    rig.run(reconciler)
    rig.client.create(instance("web"))
    wait_for(lambda: len(reconciler.calls) == 2, what="the requeued call")
    first, second = reconciler.starts()
    assert second - first >= 0.4 * 0.95
    # The runner counts a call once reconcile has returned: just after the call was recorded.
    wait_for(lambda: rig.outcomes()["success"] == 1, what="the second call counted")
    assert rig.outcomes()["requeue"] == 1 and rig.outcomes()["success"] == 1


def test_watched_kinds_queue_the_keys_their_mapper_names(rig: Rig) -> None:
    reconciler = Scripted(lambda n: Result())
    rig.run(reconciler)
    web = rig.client.create(instance("web"))
    wait_for(lambda: len(reconciler.calls) == 1, what="the first reconcile")
    rig.client.create(owned_replica(web, 0))
    wait_for(lambda: len(reconciler.calls) == 2, what="the replica's owner to be reconciled")
    assert {k for k, _, _ in reconciler.calls} == {Key("default", "web")}

    # The runner counts a call once reconcile has returned: just after the call was recorded.
    def counted() -> bool:
        snapshot = rig.metrics.snapshot()["controllers"]["scripted"]
        return bool(snapshot["duration_seconds_count"] == 2 and snapshot["queue_depth"] == 0)

    wait_for(counted, what="both calls counted and the queue empty")


class Batching(Scripted):
    BATCH_SECONDS: ClassVar[float] = 1.0


def test_a_batching_reconciler_merges_progress_into_one_pass_and_takes_spec_changes_at_once(
    rig: Rig,
) -> None:
    reconciler = Batching(lambda n: Result())
    rig.run(reconciler)
    web = rig.client.create(instance("web"))
    wait_for(lambda: len(reconciler.calls) == 1, what="the new object, reconciled at once")

    # Progress: 20 replicas appear, and the Instance's status says its spec was observed.
    burst = time.monotonic()
    for ordinal in range(20):
        rig.client.create(owned_replica(web, ordinal))
    web.status.observedGeneration = web.metadata.generation
    web = rig.client.update_status(web)
    wait_for(lambda: len(reconciler.calls) == 2, what="the batched pass")
    time.sleep(1.5)  # more than a batch period: a second pass would have run by now
    assert len(reconciler.calls) == 2
    assert reconciler.starts()[1] - burst >= Batching.BATCH_SECONDS * 0.95

    # A spec change is a new wish: reconciled without waiting for the batch period.
    web.spec.replicas = 3
    changed = time.monotonic()
    rig.client.update(web)
    wait_for(lambda: len(reconciler.calls) == 3, what="the spec change's pass")
    assert reconciler.starts()[2] - changed < Batching.BATCH_SECONDS * 0.8
