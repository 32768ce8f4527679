"""Git mode (must-shows 2 and 3): committed states of one branch are applied, nothing else;
force-pushes are followed; an invalid commit applies nothing and keeps the last good state."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from constellation.client.client import Client
from tests.gitops.conftest import (
    BAD_INSTANCE,
    Repo,
    SyncProcess,
    git,
    instance,
    instances,
    ok,
    run_cli,
    wait_for,
)


def status(data_dir: Path, name: str) -> dict[str, object]:
    shown = json.loads(ok(data_dir, "gitops", "status", name, "-o", "json"))
    assert len(shown) == 1
    result: dict[str, object] = shown[0]
    return result


def test_commits_on_the_branch_are_applied_and_nothing_else(
    repo: Repo, data_dir: Path, client: Client
) -> None:
    repo.write("web.yaml", instance("web", 1))
    first = repo.commit("web")
    sync = ("gitops", "sync", repo.url, "--name", "app", "--branch", "main", "--once")
    ok(data_dir, *sync)
    assert instances(client)["web"].spec.replicas == 1
    assert status(data_dir, "app")["revision"] == first

    # Uncommitted edits in a working copy, a commit not pushed, and another branch: none
    # of them is the branch's committed state.
    repo.write("web.yaml", instance("web", 9))
    repo.write("draft.yaml", instance("draft"))
    ok(data_dir, *sync)
    repo.commit("not pushed", push=False)
    ok(data_dir, *sync)
    git(repo.work, "push", "-q", "origin", "HEAD:feature")
    ok(data_dir, *sync)
    assert set(instances(client)) == {"web"}
    assert instances(client)["web"].spec.replicas == 1

    git(repo.work, "push", "-q", "origin", "HEAD:main")
    ok(data_dir, *sync)
    assert set(instances(client)) == {"web", "draft"}
    assert instances(client)["web"].spec.replicas == 9


def test_another_branch_is_followed_when_named(
    repo: Repo, data_dir: Path, client: Client, tmp_path: Path
) -> None:
    repo.write("web.yaml", instance("web"))
    repo.commit("main")
    git(repo.work, "checkout", "-q", "-b", "staging")
    repo.write("canary.yaml", instance("canary"))
    git(repo.work, "add", "-A")
    git(repo.work, "commit", "-q", "-m", "canary")
    git(repo.work, "push", "-q", "origin", "staging")
    ok(data_dir, "gitops", "sync", repo.url, "--branch", "staging", "--once")
    assert set(instances(client)) == {"web", "canary"}
    # Without --branch: the remote's default branch (main), here into a store of its own.
    other = tmp_path / "other-data"
    ok(other, "gitops", "sync", repo.url, "--name", "default", "--once")
    assert status(other, "default")["objects"] == 1


def test_a_force_push_to_an_older_commit_is_followed(
    repo: Repo, data_dir: Path, client: Client, start_sync: Callable[..., SyncProcess]
) -> None:
    repo.write("web.yaml", instance("web", 1))
    old = repo.commit("one")
    sync = start_sync(repo.url, "--name", "app", "--interval", "0.3")
    wait_for(lambda: "web" in instances(client))

    repo.write("web.yaml", instance("web", 4))
    repo.write("api.yaml", instance("api"))
    repo.commit("two")
    wait_for(lambda: "api" in instances(client) and instances(client)["web"].spec.replicas == 4)

    git(repo.work, "push", "-q", "--force", "origin", f"{old}:main")
    wait_for(lambda: set(instances(client)) == {"web"})
    assert instances(client)["web"].spec.replicas == 1
    assert status(data_dir, "app")["revision"] == old
    assert sync.stop() == 0


def test_an_invalid_commit_applies_nothing_and_keeps_the_last_good_revision(
    repo: Repo, data_dir: Path, client: Client
) -> None:
    repo.write("web.yaml", instance("web", 1))
    good = repo.commit("good")
    sync = ("gitops", "sync", repo.url, "--name", "app", "--once")
    ok(data_dir, *sync)
    before = instances(client)["web"].metadata.resourceVersion

    # A valid change, a new object and an invalid file in one commit.
    repo.write("web.yaml", instance("web", 3))
    repo.write("api.yaml", instance("api"))
    repo.write("sub/broken.yaml", BAD_INSTANCE)
    repo.commit("bad")
    failed = run_cli(data_dir, *sync)
    assert failed.returncode == 1
    assert "error: sub/broken.yaml:8: spec.restartPolicee: unknown field" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert set(instances(client)) == {"web"}
    assert instances(client)["web"].metadata.resourceVersion == before
    shown = status(data_dir, "app")
    assert shown["revision"] == good
    assert shown["lastError"] == [
        'sub/broken.yaml:8: spec.restartPolicee: unknown field (did you mean "restartPolicy"?)'
    ]
    table = ok(data_dir, "gitops", "status")
    assert "sub/broken.yaml:8" in table and good[:12] in table

    git(repo.work, "rm", "-q", "sub/broken.yaml")
    fixed = repo.commit("fix")
    ok(data_dir, *sync)
    assert set(instances(client)) == {"web", "api"}
    assert instances(client)["web"].spec.replicas == 3
    shown = status(data_dir, "app")
    assert shown["revision"] == fixed
    assert shown["lastError"] == []


def test_an_unreachable_repository_fails_once_with_one_line(data_dir: Path, tmp_path: Path) -> None:
    result = run_cli(data_dir, "gitops", "sync", f"file://{tmp_path}/nowhere", "--once")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: git ")
