"""Smoke test of the scheduler benchmark: it runs (--quick), and reports every figure,
present and positive. Not a timed test: how fast is the benchmark's business, not CI's."""

from __future__ import annotations

from pathlib import Path

from tests.bench.quick import run_quick

FIGURES = {
    "placements_per_s_20_nodes",
    "placements_per_s_100_nodes",
    "manager_bind_seconds",
    "manager_idle_cpu_percent",
    "manager_rss_mb",
}


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    report = run_quick("scheduler", tmp_path)
    assert set(report["figures"]) == FIGURES
    for name, figure in report["figures"].items():
        value = figure["constellation"]
        # Idle CPU is counted in 10 ms clock ticks: over the quick run's short window an
        # idle manager may truly use none. Every other figure must be positive.
        floor_ok = value >= 0 if name == "manager_idle_cpu_percent" else value > 0
        assert value is not None and floor_ok, (name, value)
    for name in ("placements_20_nodes", "placements_100_nodes"):
        detail = report["details"][name]
        assert detail["time_mostly_in"] in ("lister_read", "decide", "bind_write", "event_handoff")
        assert detail["events_dropped"] == 0
