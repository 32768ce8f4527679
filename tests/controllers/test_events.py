"""Events are merged on repeat and expire through a store lease."""

from __future__ import annotations

import time

from constellation.apis.event import Event
from constellation.apis.instance import Instance
from constellation.client.client import Client
from constellation.controllers.events import StoreEventRecorder


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
