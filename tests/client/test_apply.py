"""apply's three-way merge with real kinds: what users remove goes, what others own stays."""

from __future__ import annotations

import threading
from typing import Any

from constellation.apis.instance import Instance
from constellation.apis.scalepolicy import ScalePolicy
from constellation.client.apply import ApplyOutcome, apply, prune
from constellation.client.client import Client
from constellation.client.selector import parse_selector
from constellation.store import Conflict, Store


def instance(name: str = "web", replicas: int = 2, **extra: Any) -> Instance:
    labels = extra.pop("labels", {"app": name})
    spec = {"replicas": replicas, "command": ["sleep", "1000"], **extra}
    return Instance.model_validate({"metadata": {"name": name, "labels": labels}, "spec": spec})


def test_first_apply_creates_then_same_manifest_is_unchanged(client: Client, store: Store) -> None:
    assert apply(client, instance()).outcome is ApplyOutcome.CREATED
    revision = store.current_revision()
    assert apply(client, instance()).outcome is ApplyOutcome.UNCHANGED
    assert store.current_revision() == revision  # nothing was written


def test_removing_a_label_from_the_manifest_removes_it(client: Client) -> None:
    apply(client, instance(labels={"app": "web", "tier": "front"}))
    result = apply(client, instance(labels={"app": "web"}))
    assert result.outcome is ApplyOutcome.CONFIGURED
    assert client.get(Instance, "web").metadata.labels == {"app": "web"}


def test_fields_set_by_controllers_survive(client: Client) -> None:
    live = apply(client, instance()).object
    live.metadata.labels["controller.example/seen"] = "yes"
    live.metadata.finalizers = ["controller.example/cleanup"]
    live = client.update(live)
    live.status.readyReplicas = 2
    client.update_status(live)
    apply(client, instance(args=["--verbose"]))
    after = client.get(Instance, "web")
    assert after.spec.args == ["--verbose"]
    assert after.metadata.labels["controller.example/seen"] == "yes"
    assert after.metadata.finalizers == ["controller.example/cleanup"]
    assert after.status.readyReplicas == 2
    assert after.metadata.generation == 2


def test_a_scale_policy_owns_replicas(client: Client) -> None:
    apply(client, instance(replicas=2))
    policy = ScalePolicy.model_validate(
        {
            "metadata": {"name": "web"},
            "spec": {"targetRef": {"name": "web"}, "minReplicas": 1, "maxReplicas": 10},
        }
    )
    apply(client, policy)
    scaled = client.get(Instance, "web")
    scaled.spec.replicas = 7  # what the autoscaler decided
    client.update(scaled)
    result = apply(client, instance(replicas=3, args=["x"]))
    assert result.object.spec.replicas == 7
    assert result.object.spec.args == ["x"]
    client.delete(ScalePolicy, "web")
    assert apply(client, instance(replicas=3, args=["x"])).object.spec.replicas == 3


def test_dry_run_writes_nothing(client: Client, store: Store) -> None:
    assert apply(client, instance(), dry_run=True).outcome is ApplyOutcome.CREATED
    assert store.current_revision() == 0
    apply(client, instance())
    revision = store.current_revision()
    result = apply(client, instance(replicas=5), dry_run=True)
    assert (result.outcome, result.object.spec.replicas) == (ApplyOutcome.CONFIGURED, 5)
    assert store.current_revision() == revision
    assert client.get(Instance, "web").spec.replicas == 2


def test_the_last_applied_record_has_no_size_limit(client: Client) -> None:
    big_env = [{"name": f"VAR_{i}", "value": "x" * 1000} for i in range(400)]  # ~400 KB
    apply(client, instance(env=big_env))
    result = apply(client, instance(env=big_env[:-1]))
    assert result.outcome is ApplyOutcome.CONFIGURED
    assert len(client.get(Instance, "web").spec.env) == 399


def test_prune_deletes_only_what_this_apply_set_created(client: Client) -> None:
    app = parse_selector("app=shop")
    for name in ("front", "back"):
        apply(client, instance(name, labels={"app": "shop"}), apply_set=app)
    client.create(instance("by-hand", labels={"app": "shop"}))
    apply(
        client,
        instance("other-set", labels={"app": "shop", "x": "y"}),
        apply_set=parse_selector("app=shop,x=y"),
    )
    keep = {instance("front", labels={"app": "shop"}).key_parts()}
    pruned = prune(client, [Instance], app, keep)
    assert [p.name for p in pruned] == ["back"]
    names = sorted(o.metadata.name for o in client.list(Instance)[0])
    assert names == ["by-hand", "front", "other-set"]


def test_concurrent_applies_and_controller_writes_lose_nothing(client: Client) -> None:
    apply(client, instance(replicas=1))
    errors: list[BaseException] = []

    def applier() -> None:
        try:
            for i in range(30):
                apply(client, instance(replicas=1, args=[f"v{i}"]))
        except BaseException as error:
            errors.append(error)

    def controller() -> None:
        try:
            for i in range(30):
                while True:
                    live = client.get(Instance, "web")
                    live.metadata.labels[f"seen-{i}"] = "y"
                    try:
                        client.update(live)
                        break
                    except Conflict:
                        continue
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=applier), threading.Thread(target=controller)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = client.get(Instance, "web")
    assert final.spec.args == ["v29"]
    assert all(final.metadata.labels.get(f"seen-{i}") == "y" for i in range(30))
