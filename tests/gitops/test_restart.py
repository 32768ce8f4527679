"""Restarts: a sync killed with -9 resumes from its inventory in the store, re-creating and
deleting nothing that did not change; one process per sync name at a time."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from constellation.client.client import Client
from tests.gitops.conftest import SyncProcess, instance, instances, run_cli, wait_for

COUNT = 150


def versions(client: Client) -> dict[str, tuple[str | None, str | None]]:
    return {
        name: (obj.metadata.uid, obj.metadata.resourceVersion)
        for name, obj in instances(client).items()
    }


def test_killed_and_restarted_it_resumes_from_its_inventory(
    tmp_path: Path, client: Client, start_sync: Callable[..., SyncProcess]
) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    for number in range(COUNT):
        (folder / f"app-{number:03d}.yaml").write_text(instance(f"app-{number:03d}"))
    first = start_sync(str(folder), "--interval", "600")
    # Killed mid-way through the first sync, or soon after it.
    wait_for(lambda: len(instances(client)) >= COUNT // 3)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    made_before_kill = versions(client)

    # While it is down: one object edited, one removed from the source.
    (folder / "app-000.yaml").write_text(instance("app-000", 3))
    (folder / "app-001.yaml").unlink()
    second = start_sync(str(folder), "--interval", "600")
    wait_for(lambda: "app-001" not in instances(client) and len(instances(client)) == COUNT - 1)
    wait_for(lambda: instances(client)["app-000"].spec.replicas == 3)

    after = versions(client)
    for name, (uid, version) in made_before_kill.items():
        if name in ("app-000", "app-001"):
            continue
        assert after[name][0] == uid, f"{name} was re-created"
        assert after[name][1] == version, f"{name} was written again"
    assert after["app-000"][0] == made_before_kill["app-000"][0]
    assert second.process.poll() is None, second.stderr()
    assert second.stop() == 0


def test_one_process_per_sync_name(
    tmp_path: Path, data_dir: Path, client: Client, start_sync: Callable[..., SyncProcess]
) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "web.yaml").write_text(instance("web"))
    running = start_sync(str(folder), "--interval", "600")
    wait_for(lambda: "web" in instances(client))

    second = run_cli(data_dir, "gitops", "sync", str(folder), "--once")
    assert second.returncode == 1
    assert "gitops sync app is running in another process" in second.stderr
    assert running.stop() == 0
    # A clean stop releases the lock at once.
    again = run_cli(data_dir, "gitops", "sync", str(folder), "--once", timeout=4)
    assert again.returncode == 0, again.stderr
