"""`make demo` is the README's first command: it must run the example app for real and exit 0."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.runtime.conftest import NEEDS_ROOT

ROOT = Path(__file__).resolve().parents[1]


@NEEDS_ROOT
def test_make_demo_runs_the_example_app_and_leaves_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        ["make", "-s", "demo", f"DEMO_DIR={tmp_path / 'demo'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "instance/web created" in out and "alert/web-down created" in out
    assert "3/3" in out, "get instances shows all three replicas ready"
    assert "HTTP 200" in out
    assert "no process or cgroup left behind" in out
    assert (tmp_path / "demo" / "state.db").is_file()
