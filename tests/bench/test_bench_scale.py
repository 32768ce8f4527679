"""Smoke test of the scale benchmark: a quick run (60 replicas on 3 agents, each in its own
network namespace, on etcd; one agent killed) reports every figure and leaves no namespace,
cgroup or process behind. Not a timed test: how fast is the benchmark's business, not CI's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from constellation.controllers.base import DEFAULT_NODE_GRACE_SECONDS
from tests.bench.quick import run_quick
from tests.runtime.conftest import NEEDS_ROOT

pytestmark = NEEDS_ROOT

FIGURES = {"all_running_s", "first_failed_s", "failover_s", "failover_vs_kubernetes_s"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_quick("scale", tmp_path_factory.mktemp("bench-scale"), timeout=100)


def test_quick_run_reports_every_figure(report: dict[str, Any]) -> None:
    figures = report["figures"]
    assert set(figures) == FIGURES
    for name, figure in figures.items():
        assert figure["constellation"] > 0, name
    assert figures["failover_s"]["met"] is None  # the target is for 1,000 replicas
    assert figures["failover_s"]["target"] == "< 10 s"
    assert figures["failover_s"]["baseline"] == 20.0
    # Its replicas are failed only once the node has been NotReady for the grace.
    first_failed = figures["first_failed_s"]["constellation"]
    assert DEFAULT_NODE_GRACE_SECONDS <= first_failed <= figures["failover_s"]["constellation"]


def test_the_lost_agents_replicas_run_on_the_others(report: dict[str, Any]) -> None:
    details = report["details"]
    count = report["config"]["replicas"]
    before = {k.removeprefix("before_on_"): v for k, v in details.items() if "before_on_" in k}
    after = {k.removeprefix("running_on_"): v for k, v in details.items() if "running_on_" in k}
    assert sum(before.values()) == count
    assert before.get("node-0", 0) == details["replicas_lost"] > 0
    assert "node-0" not in after
    assert sum(after.values()) == count
    assert set(after) == {"node-1", "node-2"}


def test_nothing_is_left_behind(report: dict[str, Any]) -> None:
    name = f"constellation-bench-{report['config']['id']}"
    assert not list(Path("/run/netns").glob(f"{name}*")), "network namespace left behind"
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{name}")), "cgroup parent left behind"
    assert report["errors"] == {}
