"""Smoke test of the runtime benchmark: a quick run (50 replicas, a few samples) reports every
figure with sane values and leaves its cgroup parent removed. Not a timed test: how fast is the
benchmark's business, not CI's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from constellation.runtime.spawn import default_init
from tests.bench.quick import run_quick
from tests.runtime.conftest import NEEDS_ROOT

pytestmark = NEEDS_ROOT

FIGURES = {
    "spawn_p50_ms",
    "spawn_p99_ms",
    "spawn_p50_vs_runc_ms",
    "spawn_p99_vs_runc_ms",
    "spawn_p50_vs_posix_spawn_ms",
    "apply_to_running_p50_ms",
    "apply_to_running_p99_ms",
    "all_running_s",
    "outside_workload_per_replica_kb",
    "helper_pss_per_replica_kb",
    "helper_uss_per_replica_kb",
    "helper_rss_per_replica_kb",
    "agent_growth_per_replica_kb",
    "agent_rss_mb",
    "agent_idle_cpu_percent",
    "controllers_cpu_s",
    "spawner_rss_mb",
    "spawner_pss_mb",
}
# Figures that may truly be 0: idle CPU is counted in 10 ms ticks over a short window; the
# agent's RSS may not grow for 50 replicas; without tini there is no helper.
MAY_BE_ZERO = {
    "agent_idle_cpu_percent",
    "agent_growth_per_replica_kb",
    "helper_pss_per_replica_kb",
    "helper_uss_per_replica_kb",
    "helper_rss_per_replica_kb",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick run for every test here: it starts real servers and 50 replicas."""
    return run_quick("runtime", tmp_path_factory.mktemp("bench-runtime"), timeout=90)


def test_quick_run_reports_every_figure(report: dict[str, Any]) -> None:
    figures = report["figures"]
    assert set(figures) == FIGURES
    for name, figure in figures.items():
        value = figure["constellation"]
        assert value is not None, name
        assert value >= 0 if name in MAY_BE_ZERO else value > 0, (name, value)
        assert (figure["met"] is None) == (figure["target"] is None), name


def test_quick_run_measures_each_baseline_and_stage(report: dict[str, Any]) -> None:
    spawn = report["details"]["spawn"]
    for way in ("spawn", "spawn_until_exit", "posix_spawn", "unshare", "runc", "cgroup_create"):
        assert 0 < spawn[way]["p50_ms"] <= spawn[way]["p99_ms"], way
    # A container runtime does far more than a bare posix_spawn of the same /bin/true.
    assert spawn["runc"]["p50_ms"] > spawn["posix_spawn"]["p50_ms"]
    apply = report["details"]["apply"]
    assert apply["samples"] == report["config"]["apply_samples"]
    assert 0 < apply["created_p50_ms"] <= apply["bound_p50_ms"] <= apply["running_p50_ms"]
    replicas = report["details"]["replicas"]
    count = report["config"]["replicas"]
    assert replicas["replica_cgroups"] == count
    assert replicas["helper_processes"] == (count if default_init() else 0)
    assert replicas["last_bound_s"] <= replicas["last_running_s"] <= replicas["all_running_s"]
    parent = report["config"]["cgroup_parent"]
    assert parent.startswith("constellation-bench-")
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{parent}")), "cgroup parent left behind"
