"""Smoke test of `make bench` (bench/all.py): the merge of every benchmark's results into one
report and table, a quick run of two real benchmarks through it, a benchmark stopped at its
budget, and the performance doc showing the latest table.

Not a timed test: it asserts that the harness works, never how fast anything is.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
SCRIPT = ROOT / "bench" / "all.py"
FIELDS = {"benchmark", "label", "unit", "value", "baseline", "baseline_is", "ratio", "target"}


@pytest.fixture(scope="module")
def bench_all() -> ModuleType:
    """bench/all.py as a module; the benchmarks import their shared report module by name."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        return importlib.import_module("all")
    finally:
        sys.path.remove(str(ROOT / "bench"))


def run_all(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def value_of(figure: dict[str, Any]) -> Any:
    """The project's value, as each benchmark names it (the store: its SQLite backend)."""
    return figure["sqlite"] if "sqlite" in figure else figure["constellation"]


def test_merge_of_the_committed_results_keeps_every_figure(
    bench_all: ModuleType, tmp_path: Path
) -> None:
    output = tmp_path / "latest.json"
    result = run_all("--merge-only", "--output", str(output))
    assert result.returncode == 0, result.stderr
    merged = json.loads(output.read_text())
    for name in bench_all.NAMES:
        report = json.loads((RESULTS / f"{name}.json").read_text())
        for key, figure in report["figures"].items():
            entry = merged["figures"][f"{name}.{key}"]
            assert FIELDS | {"met"} == set(entry)
            assert entry["benchmark"] == name
            assert entry["value"] == value_of(figure)
            assert entry["ratio"] == figure["ratio"]
            assert entry["met"] == figure["met"]
            assert (entry["target"] is None) == (figure["target"] in (None, "-"))
            assert entry["label"] in result.stdout
    assert len(merged["figures"]) == sum(
        len(json.loads((RESULTS / f"{n}.json").read_text())["figures"]) for n in bench_all.NAMES
    )
    assert merged["errors"] == {}


def test_store_compares_sqlite_with_etcd_and_scheduler_its_anchor(bench_all: ModuleType) -> None:
    store = json.loads((RESULTS / "store.json").read_text())
    entry = bench_all.normalize(store, store["figures"]["put_single_ops_per_s"])
    assert entry["baseline"] == store["figures"]["put_single_ops_per_s"]["etcd"]
    assert entry["baseline_is"] == "etcd backend"
    scheduler = json.loads((RESULTS / "scheduler.json").read_text())
    entry = bench_all.normalize(scheduler, scheduler["figures"]["manager_rss_mb"])
    assert entry["target"] == "< 80 MB"
    assert entry["baseline"] is None and entry["baseline_is"] is None
    entry = bench_all.normalize(scheduler, scheduler["figures"]["placements_per_s_100_nodes"])
    assert entry["target"] == ">= 1,000 1/s"
    assert entry["baseline"] == 100.0


def test_quick_run_of_two_benchmarks_merges_what_they_wrote(tmp_path: Path) -> None:
    result = run_all(
        "--quick", "--only", "cli", "--only", "scheduler", "--results-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    merged = json.loads((tmp_path / "latest.json").read_text())
    assert merged["quick"] is True
    assert merged["errors"] == {}
    assert set(merged["runs"]) == {"cli", "scheduler"}
    for name in ("cli", "scheduler"):
        report = json.loads((tmp_path / f"{name}.json").read_text())
        assert report["config"]["quick"] is True
        for key, figure in report["figures"].items():
            assert merged["figures"][f"{name}.{key}"]["value"] == value_of(figure)
        assert merged["runs"][name]["exit_code"] == 0
        assert merged["runs"][name]["wall_seconds"] > 0
    assert "wall time: cli" in result.stdout


def test_a_benchmark_past_its_budget_is_stopped_and_reported(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_all("--only", "cli", "--budget", "2", "--results-dir", str(tmp_path))
    assert result.returncode == 1
    merged = json.loads((tmp_path / "latest.json").read_text())
    assert merged["errors"] == {"cli": "stopped after its budget of 2 s"}
    assert merged["figures"] == {}
    assert not (tmp_path / "cli.json").exists()
    assert time.monotonic() - started < 40  # its 2 s, and the clean-up after SIGINT
    assert not [p for p in Path("/proc").glob("[0-9]*") if str(tmp_path) in cmdline(p)]


def cmdline(process: Path) -> str:
    try:
        return (process / "cmdline").read_bytes().decode(errors="replace")
    except OSError:  # it ended meanwhile
        return ""


def test_performance_doc_shows_the_latest_table(bench_all: ModuleType) -> None:
    latest = json.loads((RESULTS / "latest.json").read_text())
    assert latest["quick"] is False
    doc = (ROOT / "docs" / "performance.md").read_text()
    assert bench_all.markdown_table(latest) in doc
