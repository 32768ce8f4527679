"""The informer's cache follows the store through creates, updates and deletes, relists after
compaction, and resumes a broken watch without losing or repeating an event."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from constellation.apis.instance import Instance
from constellation.apis.node import Node
from constellation.client.client import Client
from constellation.client.selector import parse_selector
from constellation.controllers.informer import Informer
from constellation.controllers.metrics import Metrics
from constellation.store import Store, Watch, open_store
from tests.etcd_server import EtcdServer


def instance(name: str, namespace: str = "default", **labels: str) -> Instance:
    return Instance.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"command": ["sleep", "100"]},
        }
    )


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Recorder:
    """A handler that remembers every delivery."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str | None, bool]] = []

    def __call__(self, obj: object, deleted: bool) -> None:
        assert isinstance(obj, Instance)
        with self.lock:
            self.calls.append((obj.metadata.name, obj.metadata.resourceVersion, deleted))

    def names(self, deleted: bool | None = None) -> list[str]:
        with self.lock:
            return [n for n, _, d in self.calls if deleted is None or d == deleted]


def cache_matches_store(informer: Informer[Instance], client: Client) -> bool:
    live = {(o.metadata.name, o.metadata.resourceVersion) for o in client.list(Instance)[0]}
    cached = {(o.metadata.name, o.metadata.resourceVersion) for o in informer.list()}
    return live == cached


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def informer(client: Client, metrics: Metrics) -> Iterator[Informer[Instance]]:
    inf = Informer(client, Instance, resync_seconds=3600, metrics=metrics)
    yield inf
    inf.stop()
    assert not inf.running


def test_cache_follows_creates_updates_and_deletes(
    client: Client, informer: Informer[Instance]
) -> None:
    client.create(instance("before", tier="web"))
    recorder = Recorder()
    informer.add_handler(recorder)
    informer.start()
    assert informer.wait_for_sync(10)
    assert recorder.names() == ["before"]  # the initial list

    web = client.create(instance("web", tier="web"))
    client.create(instance("db", namespace="prod", tier="db"))
    web.spec.replicas = 3
    client.update(web)
    client.delete(Instance, "before")
    wait_for(lambda: cache_matches_store(informer, client), what="cache to match the store")

    assert {o.metadata.name for o in informer.list()} == {"web", "db"}
    got = informer.get("web")
    assert got is not None and got.spec.replicas == 3
    assert informer.get("db") is None  # default namespace
    assert informer.get("db", "prod") is not None
    assert [o.metadata.name for o in informer.list("prod")] == ["db"]
    assert [o.metadata.name for o in informer.list(selector=parse_selector("tier=web"))] == ["web"]
    assert recorder.names(deleted=True) == ["before"]
    assert recorder.names().count("web") == 2
    # get hands out a copy: changing it leaves the cache alone
    got.spec.replicas = 99
    assert informer.get("web").spec.replicas == 3  # type: ignore[union-attr]


def test_peek_hands_out_the_cached_object_itself(
    client: Client, informer: Informer[Instance]
) -> None:
    client.create(instance("web"))
    informer.start()
    assert informer.wait_for_sync(10)
    wait_for(lambda: informer.peek("web") is not None, what="the initial list")
    assert informer.peek("web") is informer.peek("web")  # no copy: read-only
    assert informer.peek("web") is informer.list()[0]
    assert informer.get("web") is not informer.peek("web")
    assert informer.get("web") == informer.peek("web")
    assert informer.peek("web", "prod") is None


def test_a_transform_rewrites_what_is_listed_and_what_is_watched(
    client: Client, metrics: Metrics
) -> None:
    def mark(obj: Instance) -> Instance:
        obj.metadata.annotations["seen-by"] = "transform"
        return obj

    client.create(instance("listed"))
    informer = Informer(client, Instance, metrics=metrics, transform=mark)
    delivered: list[tuple[str, str | None]] = []
    informer.add_handler(
        lambda obj, _: delivered.append(
            (obj.metadata.name, obj.metadata.annotations.get("seen-by"))
        )
    )
    informer.start()
    try:
        assert informer.wait_for_sync(10)
        client.create(instance("watched"))
        wait_for(lambda: len(delivered) == 2, what="the watched create")
        assert delivered == [("listed", "transform"), ("watched", "transform")]
        marks = {o.metadata.name: o.metadata.annotations.get("seen-by") for o in informer.list()}
        assert marks == {"listed": "transform", "watched": "transform"}
        assert "seen-by" not in client.get(Instance, "watched").metadata.annotations
    finally:
        informer.stop()


class SlowToWatch:
    """Fault injection: the store, except that opening a watch takes a while, so a write can
    land between an informer's list and its watch."""

    def __init__(self, store: Store, delay: float) -> None:
        self._store = store
        self._delay = delay

    def watch(self, prefix: str, start_revision: int = 0) -> Watch:
        time.sleep(self._delay)
        return self._store.watch(prefix, start_revision)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_a_write_between_the_list_and_the_watch_of_an_empty_store_is_seen(
    store: Store, metrics: Metrics
) -> None:
    # A never-written store lists at revision 0; following it "from now on" instead of from
    # revision 1 would lose a write landing between the list and the watch.
    slow = Client(cast(Store, SlowToWatch(store, 0.3)))
    informer = Informer(slow, Instance, metrics=metrics).start()
    try:
        assert informer.wait_for_sync(5)
        Client(store).create(instance("web"))  # while the watch is still being opened
        wait_for(lambda: informer.get("web") is not None, 5, "the create")
    finally:
        informer.stop()


def test_cluster_scoped_kinds_are_found_by_name_alone(client: Client, metrics: Metrics) -> None:
    client.create(Node.model_validate({"metadata": {"name": "node-a.example"}}))
    nodes = Informer(client, Node, metrics=metrics).start()
    try:
        assert nodes.wait_for_sync(10)
        assert nodes.get("node-a.example") is not None  # Lister's default namespace ignored
        assert nodes.get("node-a.example", None) is not None
    finally:
        nodes.stop()


def test_relists_and_diffs_after_compaction_while_stopped(
    client: Client, informer: Informer[Instance], metrics: Metrics
) -> None:
    keep, change, drop = (client.create(instance(n)) for n in ("keep", "change", "drop"))
    informer.start()
    assert informer.wait_for_sync(10)
    wait_for(lambda: len(informer.list()) == 3, what="the initial list")
    informer.stop()

    recorder = Recorder()
    informer.add_handler(recorder)
    change.spec.replicas = 2
    client.update(change)
    client.delete(Instance, "drop")
    client.create(instance("new"))
    client.store.compact(client.store.current_revision())

    informer.start()  # resumes from its old revision, which is compacted away
    wait_for(lambda: cache_matches_store(informer, client), what="cache to converge")
    snapshot = metrics.snapshot()["informers"]["Instance"]
    assert snapshot["relists"] == 2
    # exactly the differences, synthesized: nothing for the unchanged object
    assert sorted((name, deleted) for name, _, deleted in recorder.calls) == [
        ("change", False),
        ("drop", True),
        ("new", False),
    ]
    assert drop.metadata.name not in {o.metadata.name for o in informer.list()}
    assert keep.metadata.name in {o.metadata.name for o in informer.list()}


def test_resumes_after_etcd_is_killed_without_losing_or_repeating(tmp_path: Path) -> None:
    metrics = Metrics()
    with EtcdServer(tmp_path) as server:
        store = open_store(server.url)
        client = Client(store)
        informer = Informer(client, Instance, resync_seconds=3600, metrics=metrics, max_backoff=0.5)
        recorder = Recorder()
        informer.add_handler(recorder)
        try:
            for i in range(5):
                client.create(instance(f"before-{i}"))
            informer.start()
            wait_for(lambda: len(informer.list()) == 5, what="the initial list")

            server.kill()
            time.sleep(0.5)  # the watch notices and starts retrying against a dead port
            server.restart()
            for i in range(5):
                client.create(instance(f"after-{i}"))
            client.delete(Instance, "before-0")
            wait_for(lambda: cache_matches_store(informer, client), 20, "cache after restart")
        finally:
            informer.stop()
            store.close()
    names = recorder.names(deleted=False)
    assert sorted(names) == sorted({*names})  # nothing delivered twice
    assert len(names) == 10 and recorder.names(deleted=True) == ["before-0"]
    counters = metrics.snapshot()["informers"]["Instance"]
    assert counters["watch_restarts"] >= 1
    assert counters["relists"] == 1  # resumed from the revision, not relisted
