"""Smoke test of the GitOps benchmark harness: it runs, and reports every figure.

Not a timed test: it asserts that the harness works, never how fast a sync is.
"""

from __future__ import annotations

from pathlib import Path

from tests.bench.quick import run_quick

FIGURES = {"first_sync_seconds", "change_sync_seconds", "latency_p50_ms", "latency_p99_ms"}


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    report = run_quick("gitops", tmp_path)
    assert set(report["figures"]) == FIGURES
    for name, figure in report["figures"].items():
        for field in ("constellation", "baseline", "ratio"):
            value = figure[field]
            assert isinstance(value, int | float) and value > 0, (name, field, figure)
        assert figure["met"] is None  # targets are not judged on 50 files
    assert report["details"]["sync_idle_rss_mb"] > 0
