"""Smoke test of the store benchmark harness: it runs, and reports every figure.

Not a timed test: it asserts that the harness works, never how fast the store is.
"""

from __future__ import annotations

from pathlib import Path

from tests.bench.quick import run_quick

FIGURES = {
    "put_single_ops_per_s",
    "put_8threads_ops_per_s",
    "list_10k_best_ms",
    "list_10k_median_ms",
    "watch_same_process_p50_ms",
    "watch_same_process_p99_ms",
    "watch_cross_process_p50_ms",
    "watch_cross_process_p99_ms",
    "churn_db_size_mb",
}


def test_quick_sqlite_run_reports_every_figure(tmp_path: Path) -> None:
    report = run_quick("store", tmp_path, "--only", "sqlite")
    assert set(report["figures"]) == FIGURES
    for name, figure in report["figures"].items():
        value = figure["sqlite"]
        assert isinstance(value, int | float) and value > 0, (name, figure)
        assert figure["etcd"] is None
    assert report["details"]["sqlite"]["churn"]["updates"] > 0
