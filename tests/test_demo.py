"""`make demo` is the README's first command: it must run and exit 0."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_demo_runs_the_store_round_trip(tmp_path: Path) -> None:
    result = subprocess.run(
        ["make", "-s", "demo", f"DEMO_DIR={tmp_path / 'demo'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "1 PUT /demo/greeting hello" in result.stdout
    assert "3 PUT /demo/answer 42" in result.stdout
    assert "/demo/answer deleted at revision 4" in result.stdout
    assert (tmp_path / "demo" / "state.db").is_file()
