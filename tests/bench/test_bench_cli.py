"""Smoke test of the CLI benchmark harness: it runs, and reports every figure.

Not a timed test: it asserts that the harness works, never how fast the CLI is.
"""

from __future__ import annotations

from pathlib import Path

from tests.bench.quick import run_quick

FIGURES = {
    "apply_seconds",
    "apply_peak_rss_mb",
    "reapply_seconds",
    "get_table_seconds",
    "get_table_peak_rss_mb",
    "get_json_seconds",
    "get_json_peak_rss_mb",
    "version_ms",
    "typer_floor_ms",
}


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    report = run_quick("cli", tmp_path)
    assert set(report["figures"]) == FIGURES
    for name, figure in report["figures"].items():
        for field in ("constellation", "baseline", "ratio"):
            value = figure[field]
            assert isinstance(value, int | float) and value > 0, (name, field, figure)
    assert report["figures"]["version_ms"]["met"] in (True, False)
    assert report["figures"]["apply_seconds"]["met"] is None  # not judged on 110 objects
