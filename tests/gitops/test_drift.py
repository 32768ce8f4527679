"""Drift (must-show 5): a managed object changed by other means is restored, with an Event;
what controllers own (status, replicas under a ScalePolicy) and fields the source does not
set are not drift."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from constellation.apis.event import Event
from constellation.apis.instance import Instance
from constellation.client.client import Client
from tests.gitops.conftest import SyncProcess, instance, instances, ok, wait_for

SCALE_POLICY = """\
apiVersion: constellation.dev/v1
kind: ScalePolicy
metadata:
  name: web
spec:
  targetRef:
    kind: Instance
    name: web
  minReplicas: 1
  maxReplicas: 5
  metrics:
    - resource: cpu
      target:
        averageUtilization: 70
"""
INTERVAL = 1.0


def drift_events(client: Client, name: str) -> list[Event]:
    events, _ = client.list(Event)
    return [e for e in events if e.involvedObject.name == name and e.reason == "DriftCorrected"]


def drift_count(data_dir: Path) -> int:
    shown = json.loads(ok(data_dir, "gitops", "status", "app", "-o", "json"))
    return int(shown[0]["driftCorrected"])


def test_a_hand_apply_is_reverted_within_one_interval_with_an_event(
    tmp_path: Path, data_dir: Path, client: Client, start_sync: Callable[..., SyncProcess]
) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "web.yaml").write_text(instance("web", 2, labels="app: web"))
    sync = start_sync(str(folder), "--interval", str(INTERVAL))
    wait_for(lambda: "web" in instances(client))

    by_hand = tmp_path / "web.yaml"
    by_hand.write_text(instance("web", 7, labels="app: web"))
    assert ok(data_dir, "apply", "-f", str(by_hand)).strip() == "instance/web configured"
    changed_at = time.monotonic()
    wait_for(lambda: instances(client)["web"].spec.replicas == 2, timeout=INTERVAL + 2)
    assert time.monotonic() - changed_at < INTERVAL + 1

    events = wait_for(lambda: drift_events(client, "web"))
    assert "spec.replicas" in events[0].message
    assert events[0].involvedObject.uid == instances(client)["web"].metadata.uid
    assert drift_count(data_dir) == 1
    assert "instance/web drift corrected: restored spec.replicas" in sync.stdout()
    assert sync.stop() == 0


def test_a_managed_object_deleted_by_hand_is_re_created(
    tmp_path: Path, data_dir: Path, client: Client, start_sync: Callable[..., SyncProcess]
) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "web.yaml").write_text(instance("web"))
    sync = start_sync(str(folder), "--interval", str(INTERVAL))
    old_uid = wait_for(lambda: "web" in instances(client) and instances(client)["web"].metadata.uid)

    ok(data_dir, "delete", "instance", "web")
    new_uid = wait_for(
        lambda: "web" in instances(client) and instances(client)["web"].metadata.uid,
        timeout=INTERVAL + 2,
    )
    assert new_uid != old_uid
    assert "re-created" in wait_for(lambda: drift_events(client, "web"))[0].message
    # The inventory follows the new uid: removing it from the source prunes it.
    (folder / "web.yaml").unlink()
    (folder / "other.yaml").write_text(instance("other"))
    wait_for(lambda: set(instances(client)) == {"other"})
    assert sync.stop() == 0


def test_fields_owned_by_controllers_and_others_are_not_drift(
    tmp_path: Path, data_dir: Path, client: Client, start_sync: Callable[..., SyncProcess]
) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "web.yaml").write_text(instance("web", 2) + "---\n" + SCALE_POLICY)
    sync = start_sync(str(folder), "--interval", str(INTERVAL))
    wait_for(lambda: "web" in instances(client))
    wait_for(lambda: "instance/web created" in sync.stdout())

    # What the autoscaler and the replicas controller do, and a label someone else adds.
    web = client.get(Instance, "web")
    web.spec.replicas = 4
    web.metadata.labels["owner"] = "ops"
    web = client.update(web)
    web.status.readyReplicas = 3
    web = client.update_status(web)

    time.sleep(2.5 * INTERVAL)  # two full passes, beside the watch's immediate check
    after = client.get(Instance, "web")
    assert after.metadata.resourceVersion == web.metadata.resourceVersion
    assert after.spec.replicas == 4 and after.metadata.labels == {"owner": "ops"}
    assert drift_events(client, "web") == []
    assert drift_count(data_dir) == 0
    assert sync.stop() == 0
