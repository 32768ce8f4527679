"""Events are merged on repeat and expire through a store lease."""

from __future__ import annotations

import time

from constellation.apis.event import Event
from constellation.apis.instance import Instance
from constellation.client.client import Client
from constellation.controllers.events import StoreEventRecorder, reference


def web(client: Client) -> Instance:
    return client.create(
        Instance.model_validate({"metadata": {"name": "web"}, "spec": {"command": ["true"]}})
    )


def test_repeats_are_counted_on_one_event(client: Client) -> None:
    obj = web(client)
    recorder = StoreEventRecorder(client, "replicas")
    for _ in range(3):
        recorder.record(obj, "ScalingUp", "scaled up to 3")
    recorder.record(obj, "ScalingDown", "scaled down to 1")
    events = sorted(client.list(Event, "default")[0], key=lambda e: e.reason)
    assert [(e.reason, e.count) for e in events] == [("ScalingDown", 1), ("ScalingUp", 3)]
    up = events[1]
    assert up.involvedObject.uid == obj.metadata.uid
    assert up.source.component == "replicas"
    assert up.lastTimestamp is not None and up.firstTimestamp is not None
    assert up.lastTimestamp >= up.firstTimestamp


def test_events_expire_through_their_lease(client: Client) -> None:
    obj = web(client)
    StoreEventRecorder(client, "replicas", ttl_seconds=2).record(obj, "Scheduled", "on node-a")
    assert len(client.list(Event)[0]) == 1
    deadline = time.monotonic() + 10
    while client.list(Event)[0] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.list(Event)[0] == []


def lease_of(client: Client, event: Event) -> int:
    record = client.store.get(f"/registry/events/{event.metadata.namespace}/{event.metadata.name}")
    assert record is not None
    return record.lease


def test_events_recorded_together_share_one_lease(client: Client) -> None:
    obj = web(client)
    recorder = StoreEventRecorder(client, "replicas")
    recorder.record(obj, "ScalingUp", "scaled up to 3")
    recorder.record(obj, "ScalingDown", "scaled down to 1")
    leases = {lease_of(client, event) for event in client.list(Event)[0]}
    assert len(leases) == 1 and 0 not in leases


def test_a_lost_lease_is_replaced_and_the_event_still_written(client: Client) -> None:
    obj = web(client)
    recorder = StoreEventRecorder(client, "replicas")
    recorder.record(obj, "ScalingUp", "scaled up to 3")
    (first,) = client.list(Event)[0]
    lost = lease_of(client, first)
    client.store.revoke(lost)  # its event goes with it
    assert client.list(Event)[0] == []
    recorder.record(obj, "ScalingDown", "scaled down to 1")
    (second,) = client.list(Event)[0]
    assert second.reason == "ScalingDown"
    assert lease_of(client, second) not in (0, lost)


def test_a_reference_records_the_same_event_as_its_object(client: Client) -> None:
    obj = web(client)
    recorder = StoreEventRecorder(client, "replicas")
    recorder.record(obj, "ScalingUp", "scaled up to 3")
    recorder.record(reference(obj), "ScalingUp", "scaled up to 3")
    (event,) = client.list(Event)[0]
    assert event.count == 2
    assert event.involvedObject == reference(obj)
