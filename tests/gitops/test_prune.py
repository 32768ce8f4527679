"""Prune safety (must-show 4): only what a sync's inventory lists, matched by uid, is deleted."""

from __future__ import annotations

from pathlib import Path

from constellation.apis.instance import Instance
from constellation.client.client import Client
from tests.gitops.conftest import instance, instances, ok, run_cli


def folder_with(tmp_path: Path, name: str, **files: str) -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    for file, text in files.items():
        (folder / f"{file}.yaml").write_text(text)
    return folder


def test_a_hand_made_object_with_the_same_labels_survives_prune(
    tmp_path: Path, data_dir: Path, client: Client
) -> None:
    folder = folder_with(
        tmp_path,
        "app",
        web=instance("web", labels="app: shop"),
        api=instance("api", labels="app: shop"),
    )
    ok(data_dir, "gitops", "sync", str(folder), "--once")
    by_hand = tmp_path / "by-hand.yaml"
    by_hand.write_text(instance("debug", labels="app: shop"))
    ok(data_dir, "apply", "-f", str(by_hand))

    (folder / "api.yaml").unlink()
    output = ok(data_dir, "gitops", "sync", str(folder), "--once")
    assert "instance/api pruned" in output
    assert set(instances(client)) == {"web", "debug"}


def test_an_object_re_created_by_hand_after_leaving_the_source_is_not_pruned(
    tmp_path: Path, data_dir: Path, client: Client
) -> None:
    folder = folder_with(tmp_path, "app", web=instance("web"), api=instance("api"))
    ok(data_dir, "gitops", "sync", str(folder), "--once")
    # api is deleted and made again by hand: same kind and name, another uid.
    client.delete(Instance, "api")
    by_hand = tmp_path / "api.yaml"
    by_hand.write_text(instance("api", 4))
    ok(data_dir, "apply", "-f", str(by_hand))

    (folder / "api.yaml").unlink()
    output = ok(data_dir, "gitops", "sync", str(folder), "--once")
    assert "pruned" not in output
    assert instances(client)["api"].spec.replicas == 4


def test_an_emptied_source_prunes_nothing_without_allow_empty(
    tmp_path: Path, data_dir: Path, client: Client
) -> None:
    folder = folder_with(tmp_path, "app", web=instance("web"), api=instance("api"))
    ok(data_dir, "gitops", "sync", str(folder), "--once")
    for file in folder.iterdir():
        file.unlink()

    refused = run_cli(data_dir, "gitops", "sync", str(folder), "--once")
    assert refused.returncode == 1
    assert "yields no objects: nothing applied and nothing pruned" in refused.stderr
    assert "--allow-empty" in refused.stderr
    assert set(instances(client)) == {"web", "api"}

    output = ok(data_dir, "gitops", "sync", str(folder), "--once", "--allow-empty")
    assert sorted(output.splitlines()[:2]) == ["instance/api pruned", "instance/web pruned"]
    assert instances(client) == {}


def test_a_vanished_folder_changes_nothing(tmp_path: Path, data_dir: Path, client: Client) -> None:
    folder = folder_with(tmp_path, "app", web=instance("web"))
    ok(data_dir, "gitops", "sync", str(folder), "--once")
    (folder / "web.yaml").unlink()
    folder.rmdir()
    failed = run_cli(data_dir, "gitops", "sync", str(folder), "--name", "app", "--once")
    assert failed.returncode == 1
    assert set(instances(client)) == {"web"}


def test_objects_of_another_sync_are_never_pruned_or_taken_over(
    tmp_path: Path, data_dir: Path, client: Client
) -> None:
    first = folder_with(tmp_path, "first", web=instance("web", labels="team: a"))
    second = folder_with(tmp_path, "second", api=instance("api", labels="team: a"))
    ok(data_dir, "gitops", "sync", str(first), "--once")
    ok(data_dir, "gitops", "sync", str(second), "--once")

    # The second sync drops api and claims web, which the first sync manages: refused whole.
    (second / "api.yaml").unlink()
    (second / "web.yaml").write_text(instance("web", 5, labels="team: a"))
    refused = run_cli(data_dir, "gitops", "sync", str(second), "--once")
    assert refused.returncode == 1
    assert "instance/web is managed by gitops sync first" in refused.stderr
    assert set(instances(client)) == {"web", "api"}
    assert instances(client)["web"].spec.replicas == 1


def test_no_prune_leaves_objects_that_left_the_source(
    tmp_path: Path, data_dir: Path, client: Client
) -> None:
    folder = folder_with(tmp_path, "app", web=instance("web"), api=instance("api"))
    ok(data_dir, "gitops", "sync", str(folder), "--once")
    (folder / "api.yaml").unlink()
    ok(data_dir, "gitops", "sync", str(folder), "--once", "--no-prune")
    assert set(instances(client)) == {"web", "api"}
    # Released from the inventory: a later pass with prune leaves it too.
    ok(data_dir, "gitops", "sync", str(folder), "--once")
    assert set(instances(client)) == {"web", "api"}
