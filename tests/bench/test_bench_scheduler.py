"""Smoke test of the scheduler benchmark: it runs (--quick), and reports every figure,
present and positive. Not a timed test: how fast is the benchmark's business, not CI's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {
    "placements_per_s_20_nodes",
    "placements_per_s_100_nodes",
    "manager_bind_seconds",
    "manager_idle_cpu_percent",
    "manager_rss_mb",
}


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "scheduler.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scheduler.py"), "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert json.loads(output.read_text()) == report
    assert report["errors"] == {}
    assert set(report["figures"]) == FIGURES
    for name, figure in report["figures"].items():
        assert figure["constellation"] is not None and figure["constellation"] > 0, name
    for name in ("placements_20_nodes", "placements_100_nodes"):
        detail = report["details"][name]
        assert detail["time_mostly_in"] in ("lister_read", "decide", "bind_write", "event_handoff")
        assert detail["events_dropped"] == 0
