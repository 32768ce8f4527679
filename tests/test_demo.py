"""`make demo` is the README's first command: it must run and exit 0."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_demo_applies_the_example_app(tmp_path: Path) -> None:
    result = subprocess.run(
        ["make", "-s", "demo", f"DEMO_DIR={tmp_path / 'demo'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "instance/web created" in out and "alert/web-down created" in out
    assert "instance/web unchanged" in out
    assert "instance/web configured (dry run)" in out
    assert "Name:              web" in out
    assert (tmp_path / "demo" / "state.db").is_file()
