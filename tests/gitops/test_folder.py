"""Folder mode (must-show 1): add, edit and delete files, and the store follows at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from constellation.client.client import Client
from tests.gitops.conftest import (
    BAD_INSTANCE,
    SyncProcess,
    instance,
    instances,
    ok,
    run_cli,
    wait_for,
)


def test_the_store_follows_added_edited_and_deleted_files(
    tmp_path: Path, data_dir: Path, client: Client, start_sync: Callable[..., SyncProcess]
) -> None:
    folder = tmp_path / "manifests"
    (folder / "apps").mkdir(parents=True)
    (folder / "web.yaml").write_text(instance("web", 2))
    # An interval far longer than the test: only the folder watch can explain what follows.
    sync = start_sync(str(folder), "--interval", "600")
    wait_for(lambda: "web" in instances(client))

    (folder / "apps" / "api.yaml").write_text(instance("api", 1))
    wait_for(lambda: "api" in instances(client))

    (folder / "web.yaml").write_text(instance("web", 3))
    wait_for(lambda: instances(client)["web"].spec.replicas == 3)

    (folder / "apps" / "api.yaml").unlink()
    wait_for(lambda: "api" not in instances(client))
    assert set(instances(client)) == {"web"}
    assert sync.process.poll() is None, sync.stderr()
    assert "instance/api pruned" in sync.stdout()
    assert sync.stop() == 0


def test_hidden_files_and_other_suffixes_are_not_part_of_the_source(
    tmp_path: Path, data_dir: Path, client: Client
) -> None:
    folder = tmp_path / "manifests"
    (folder / ".hidden").mkdir(parents=True)
    (folder / "web.yaml").write_text(instance("web"))
    (folder / ".hidden" / "secret.yaml").write_text(instance("secret"))
    (folder / ".web.yaml.swp").write_text(instance("swap"))
    (folder / "notes.txt").write_text(instance("notes"))
    (folder / "api.yml").write_text(instance("api"))
    ok(data_dir, "gitops", "sync", str(folder), "--once")
    assert set(instances(client)) == {"web", "api"}


def test_path_limits_the_source_to_a_subfolder(
    tmp_path: Path, data_dir: Path, client: Client
) -> None:
    folder = tmp_path / "repo"
    (folder / "prod").mkdir(parents=True)
    (folder / "staging").mkdir()
    (folder / "prod" / "web.yaml").write_text(instance("web"))
    (folder / "staging" / "web-test.yaml").write_text(instance("web-test"))
    ok(data_dir, "gitops", "sync", str(folder), "--path", "prod", "--once")
    assert set(instances(client)) == {"web"}
    outside = run_cli(data_dir, "gitops", "sync", str(folder), "--path", "../x", "--once")
    assert outside.returncode != 0
    assert "--path ../x: must be a folder inside the source" in outside.stderr


def test_an_invalid_file_written_while_syncing_keeps_the_last_good_state(
    tmp_path: Path, data_dir: Path, client: Client, start_sync: Callable[..., SyncProcess]
) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "web.yaml").write_text(instance("web", 2))
    sync = start_sync(str(folder), "--interval", "600")
    wait_for(lambda: "web" in instances(client))

    # One valid change and one invalid file in the same settle window: neither is applied.
    (folder / "web.yaml").write_text(instance("web", 5))
    (folder / "broken.yaml").write_text(BAD_INSTANCE)
    message = f"{folder / 'broken.yaml'}:8: spec.restartPolicee: unknown field"
    wait_for(lambda: message in sync.stderr())
    assert instances(client)["web"].spec.replicas == 2
    assert "broken" not in instances(client)

    (folder / "broken.yaml").unlink()
    wait_for(lambda: instances(client)["web"].spec.replicas == 5)
    assert sync.stop() == 0
