"""Kubernetes object semantics of the typed client, on a real embedded store."""

from __future__ import annotations

import pytest

from constellation.apis.meta import OwnerReference
from constellation.client.client import Client, WatchEventType
from constellation.client.selector import parse_selector
from constellation.store import AlreadyExists, Conflict, NotFound, Store
from tests.client.conftest import Widget, widget


def test_create_sets_server_metadata(client: Client, store: Store) -> None:
    created = client.create(widget("a"))
    meta = created.metadata
    assert meta.uid and len(meta.uid) == 36
    assert meta.generation == 1
    assert meta.creationTimestamp is not None
    assert meta.resourceVersion == str(store.current_revision())
    assert client.get(Widget, "a") == created
    with pytest.raises(AlreadyExists):
        client.create(widget("a"))


def test_get_of_a_missing_object_names_it(client: Client) -> None:
    with pytest.raises(NotFound, match="widget default/nope not found"):
        client.get(Widget, "nope")
    assert client.find(Widget, "nope") is None


def test_update_with_a_stale_resource_version_is_a_conflict(client: Client) -> None:
    created = client.create(widget("a"))
    fresh = created.model_copy(deep=True)
    fresh.spec.size = 2
    client.update(fresh)
    created.spec.size = 3
    with pytest.raises(Conflict, match="read it again and retry"):
        client.update(created)
    assert client.get(Widget, "a").spec.size == 2


def test_generation_counts_spec_changes_only(client: Client) -> None:
    obj = client.create(widget("a"))
    obj.metadata.labels["tier"] = "front"
    obj = client.update(obj)
    assert obj.metadata.generation == 1
    obj.spec.colour = "blue"
    obj = client.update(obj)
    assert obj.metadata.generation == 2
    assert obj.metadata.labels == {"tier": "front"}


def test_update_version_writes_what_update_writes_and_returns_the_new_version(
    client: Client, store: Store
) -> None:
    obj = client.create(widget("a"))
    obj.spec.size = 4
    obj.status.seen = 3  # update never writes status, and neither does this
    version = client.update_version(obj)
    assert version == str(store.current_revision())
    stored = client.get(Widget, "a")
    assert (stored.metadata.resourceVersion, stored.metadata.generation) == (version, 2)
    assert (stored.spec.size, stored.status.seen) == (4, 0)
    with pytest.raises(Conflict):
        client.update_version(obj)  # still at the version it was read at
    stored.metadata.labels["tier"] = "front"
    assert client.update_version(stored) != version


def test_update_never_writes_status_and_status_never_writes_spec(client: Client) -> None:
    obj = client.create(widget("a"))
    obj.status.seen = 5
    obj.spec.size = 9
    obj = client.update(obj)
    assert (obj.spec.size, obj.status.seen) == (9, 0)
    obj.status.seen = 7
    obj.spec.size = 100
    obj = client.update_status(obj)
    assert (obj.spec.size, obj.status.seen) == (9, 7)
    assert obj.metadata.generation == 2
    assert client.get(Widget, "a") == obj


def test_writes_that_change_nothing_make_no_revision(client: Client, store: Store) -> None:
    obj = client.create(widget("a"))
    revision = store.current_revision()
    assert client.update(obj) == obj
    assert client.update_status(obj) == obj
    assert store.current_revision() == revision


def test_server_metadata_cannot_be_overwritten(client: Client) -> None:
    obj = client.create(widget("a"))
    changed = obj.model_copy(deep=True)
    changed.metadata.uid = "forged"
    changed.metadata.generation = 99
    assert client.update(changed) == obj


def test_finalizers_hold_deletion_until_removed(client: Client) -> None:
    obj = widget("a")
    obj.metadata.finalizers = ["example.com/cleanup"]
    client.create(obj)
    marked = client.delete(Widget, "a")
    assert marked is not None and marked.metadata.deletionTimestamp is not None
    assert client.get(Widget, "a").metadata.deletionTimestamp is not None
    assert client.delete(Widget, "a") == marked  # deleting again changes nothing
    marked.metadata.finalizers = []
    client.update(marked)
    assert client.find(Widget, "a") is None


def test_delete_without_finalizers_is_immediate(client: Client) -> None:
    client.create(widget("a"))
    assert client.delete(Widget, "a") is None
    with pytest.raises(NotFound):
        client.delete(Widget, "a")


def test_delete_with_a_stale_resource_version_is_a_conflict(client: Client) -> None:
    obj = client.create(widget("a"))
    obj.spec.size = 2
    client.update(obj)
    with pytest.raises(Conflict):
        client.delete(Widget, "a", resource_version=str(obj.metadata.resourceVersion))


def test_delete_unchanged_deletes_only_the_version_read(client: Client) -> None:
    stale = client.create(widget("a"))
    fresh = stale.model_copy(deep=True)
    fresh.spec.size = 2
    fresh = client.update(fresh)
    with pytest.raises(Conflict):
        client.delete_unchanged(stale)
    assert client.delete_unchanged(fresh) is None
    with pytest.raises(NotFound):
        client.delete_unchanged(fresh)

    held = widget("b")
    held.metadata.finalizers = ["example.com/keep"]
    marked = client.delete_unchanged(client.create(held))  # finalizers: marked, not gone
    assert marked is not None and marked.metadata.deletionTimestamp is not None
    assert client.get(Widget, "b").metadata.deletionTimestamp is not None


def test_owner_references_round_trip(client: Client) -> None:
    owner = client.create(widget("owner"))
    child = widget("child")
    assert owner.metadata.uid is not None
    child.metadata.ownerReferences = [
        OwnerReference(kind="Widget", name="owner", uid=owner.metadata.uid, controller=True)
    ]
    stored = client.create(child)
    assert stored.metadata.ownerReferences[0].uid == owner.metadata.uid
    assert client.get(Widget, "child").metadata.ownerReferences == stored.metadata.ownerReferences


def test_list_by_namespace_and_selector(client: Client) -> None:
    client.create(widget("a", app="web", tier="front"))
    client.create(widget("b", app="web", tier="back"))
    client.create(widget("c", "other", app="web"))
    client.create(widget("d", app="db"))
    names = lambda objs: sorted(o.metadata.name for o in objs)  # noqa: E731
    assert names(client.list(Widget, "default")[0]) == ["a", "b", "d"]
    assert names(client.list(Widget)[0]) == ["a", "b", "c", "d"]
    web = parse_selector("app=web,tier in (front,back)")
    assert names(client.list(Widget, None, web)[0]) == ["a", "b"]
    assert names(client.list(Widget, None, parse_selector("!tier"))[0]) == ["c", "d"]
    assert names(client.list(Widget, None, parse_selector("tier!=front"))[0]) == ["b", "c", "d"]


def test_watch_from_a_resource_version(client: Client) -> None:
    client.create(widget("before"))
    _, revision = client.list(Widget)
    with client.watch(Widget, "default", revision) as watch:
        obj = client.create(widget("a"))
        obj.spec.size = 3
        client.update(obj)
        client.delete(Widget, "a")
        client.create(widget("elsewhere", "other"))
        events = [watch.next_event(timeout=5) for _ in range(3)]
        assert watch.next_event(timeout=0.2) is None
    assert [(e.type, e.object.metadata.name) for e in events if e] == [
        (WatchEventType.ADDED, "a"),
        (WatchEventType.MODIFIED, "a"),
        (WatchEventType.DELETED, "a"),
    ]
    assert events[1] is not None and events[1].object.spec.size == 3
    assert events[2] is not None and events[2].object.spec.size == 3
