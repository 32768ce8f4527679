"""Informer indexes answer what a scan of the store answers, through creates, binds, owner
changes, deletes and relists; a scoped informer caches only the objects in its scope and
drops one that leaves it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from constellation.apis.meta import OwnerReference
from constellation.apis.replica import Replica
from constellation.client.client import Client
from constellation.controllers.base import DirectLister
from constellation.controllers.indexes import (
    ALL_INDEXES,
    BY_INSTANCE,
    BY_NODE,
    BY_OWNER,
    indexed,
    indexes_for,
    instance_value,
)
from constellation.controllers.informer import Informer
from constellation.controllers.scope import on_node
from tests.controllers.test_informer import wait_for


def make(
    client: Client, name: str, instance: str, node: str | None = None, owner: str | None = None
) -> Replica:
    replica = Replica.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "instanceName": instance,
                "ordinal": int(name.rsplit("-", 1)[1]),
                "template": {"command": ["sleep", "1"]},
                "nodeName": node,
            },
        }
    )
    if owner is not None:
        ref = OwnerReference(apiVersion="v1", kind="Instance", name=instance, uid=owner)
        replica.metadata.ownerReferences = [ref]
    return client.create(replica)


def bind(client: Client, name: str, node: str | None) -> None:
    replica = client.get(Replica, name)
    replica.spec.nodeName = node
    client.update(replica)


VALUES = {
    BY_NODE: ["n1", "n2", "n3"],
    BY_INSTANCE: [instance_value("default", i) for i in ("web", "db", "gone")],
    BY_OWNER: ["uid-web", "uid-db", "uid-other"],
}


def names(replicas: object) -> list[str]:
    return sorted(r.metadata.name for r in replicas)  # type: ignore[attr-defined]


def answers(lister: object) -> dict[tuple[str, str], list[str]]:
    return {
        (index.name, value): names(indexed(lister, index, value))  # type: ignore[arg-type]
        for index in ALL_INDEXES
        for value in VALUES[index]
    }


@pytest.fixture
def informer(client: Client) -> Iterator[Informer[Replica]]:
    inf = Informer(client, Replica, resync_seconds=3600, indexes=indexes_for(Replica))
    yield inf.start()
    inf.stop()


def test_indexes_answer_what_a_scan_answers(client: Client, informer: Informer[Replica]) -> None:
    direct = DirectLister(client, Replica)

    def agree() -> bool:
        return answers(informer) == answers(direct)

    assert informer.wait_for_sync(10)
    make(client, "web-0", "web", "n1", "uid-web")
    make(client, "web-1", "web", None, "uid-web")
    make(client, "db-0", "db", "n2", "uid-db")
    make(client, "db-1", "db")
    wait_for(agree, what="the indexes to follow the creates")
    assert names(indexed(informer, BY_NODE, "n1")) == ["web-0"]
    assert names(indexed(informer, BY_INSTANCE, instance_value("default", "web"))) == [
        "web-0",
        "web-1",
    ]
    assert names(indexed(informer, BY_OWNER, "uid-db")) == ["db-0"]

    bind(client, "web-1", "n2")  # a value gained
    replica = client.get(Replica, "db-0")
    replica.metadata.ownerReferences = []  # a value lost
    client.update(replica)
    client.delete(Replica, "web-0")
    wait_for(agree, what="the indexes to follow binds, owner changes and deletes")
    assert names(indexed(informer, BY_NODE, "n2")) == ["db-0", "web-1"]
    assert indexed(informer, BY_NODE, "n1") == []
    assert indexed(informer, BY_OWNER, "uid-db") == []

    informer.stop()
    informer._listed = False  # as after a compaction: the next start relists
    make(client, "web-2", "web", "n1", "uid-web")
    informer.start()
    wait_for(agree, what="the indexes to be rebuilt by a relist")
    assert names(indexed(informer, BY_NODE, "n1")) == ["web-2"]


def test_a_scoped_informer_caches_only_its_nodes_replicas(client: Client) -> None:
    mine = Informer(client, Replica, resync_seconds=3600, scope=on_node("n1")).start()
    deliveries: list[tuple[str, bool]] = []
    mine.add_handler(lambda obj, deleted: deliveries.append((obj.metadata.name, deleted)))
    try:
        assert mine.wait_for_sync(10)
        make(client, "a-0", "a", "n1")
        make(client, "b-0", "b", "n2")
        make(client, "c-0", "c")
        bind(client, "c-0", "n1")  # enters the scope
        last = make(client, "d-0", "d", "n2")  # out of scope, after everything else
        wait_for(lambda: mine.revision >= int(last.metadata.resourceVersion or 0), what="rev")
        assert names(mine.list()) == ["a-0", "c-0"]
        assert ("b-0", False) not in deliveries and ("d-0", False) not in deliveries

        bind(client, "a-0", "n3")  # leaves the scope: a deletion for this cache
        client.delete(Replica, "c-0")
        wait_for(lambda: mine.list() == [], what="both to leave the cache")
        assert deliveries[-2:] == [("a-0", True), ("c-0", True)]
    finally:
        mine.stop()
