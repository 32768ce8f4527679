"""`delete --cascade`: the policy reaches the store as the garbage collector's finalizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_object_cli import WEB, ok, run


@pytest.mark.parametrize(
    ("cascade", "finalizer"), [("foreground", "foregroundDeletion"), ("orphan", "orphan")]
)
def test_cascade_marks_the_object_with_its_policy(
    tmp_path: Path, cascade: str, finalizer: str
) -> None:
    ok(tmp_path, "apply", "-f", "-", stdin=WEB)
    out = ok(tmp_path, "delete", "instance", "web", "--cascade", cascade)
    assert out.strip() == f"instance/web marked for deletion (waiting for finalizers: {finalizer})"
    marked = json.loads(ok(tmp_path, "get", "instance", "web", "-o", "json"))["metadata"]
    assert marked["finalizers"] == [finalizer] and marked["deletionTimestamp"]


def test_background_is_the_default_and_an_unknown_cascade_is_refused(tmp_path: Path) -> None:
    ok(tmp_path, "apply", "-f", "-", stdin=WEB)
    refused = run(tmp_path, "delete", "instance", "web", "--cascade", "sideways")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: unknown cascade 'sideways': use background, foreground, orphan"
    )
    assert ok(tmp_path, "delete", "instance", "web").strip() == "instance/web deleted"
