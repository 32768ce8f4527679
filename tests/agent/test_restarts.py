"""The agent and the server die by SIGKILL and come back: replicas run on untouched, and
nothing is ever run twice (processes counted in the cgroups themselves)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.apis.replica import Replica
from tests.agent.harness import PROCESSES_PER_REPLICA, Cluster, alive, instance, running, wait_for
from tests.runtime.conftest import NEEDS_ROOT

pytestmark = NEEDS_ROOT


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    created = Cluster(tmp_path)
    yield created
    created.close()


def running_pids(cluster: Cluster, count: int) -> dict[str, int]:
    def all_running() -> dict[str, int] | None:
        replicas = [r for r in cluster.client.list(Replica)[0] if running(r)]
        if len(replicas) != count:
            return None
        return {r.metadata.name: r.status.pid for r in replicas}  # type: ignore[misc]

    return wait_for(f"{count} replicas running", all_running, timeout=60)


def assert_one_process_per_replica(cluster: Cluster, pids: dict[str, int]) -> None:
    """One cgroup per replica, holding that replica's pid 1 and its workload, nothing else."""
    in_cgroups = cluster.cgroup_pids()
    assert len(in_cgroups) == len(pids), in_cgroups
    counts = {unit: len(procs) for unit, procs in in_cgroups.items()}
    assert set(counts.values()) == {PROCESSES_PER_REPLICA}, {
        u: p for u, p in in_cgroups.items() if len(p) != PROCESSES_PER_REPLICA
    }
    for procs in in_cgroups.values():
        assert len(set(procs) & set(pids.values())) == 1, (procs, pids)


def test_agent_kill9_and_restart_readopts_without_restarting(cluster: Cluster) -> None:
    cluster.start("controllers")
    cluster.start("agent", "--node-name", "node-a")
    cluster.wait_node_ready("node-a")
    cluster.apply_text(instance("steady", 10, "exec sleep 1000"))
    before = running_pids(cluster, 10)

    cluster.kill9("agent")
    assert all(alive(pid) for pid in before.values()), "replicas died with their agent"
    cluster.start("agent", "--node-name", "node-a")
    cluster.wait_node_ready("node-a")
    time.sleep(2)  # time for a wrong agent to restart or duplicate something

    after = running_pids(cluster, 10)
    assert after == before
    assert all(r.status.restarts == 0 for r in cluster.client.list(Replica)[0])
    assert_one_process_per_replica(cluster, after)
    assert "adopted" in cluster.log_text("agent")


def test_server_kill9_during_scale_up_converges_without_duplicates(cluster: Cluster) -> None:
    cluster.server()
    cluster.apply_text(instance("many", 20, "exec sleep 1000"))
    for started in (2, 7, 13):  # kill -9 at three points of the scale-up
        wait_for(
            f"{started} replicas running",
            lambda n=started: sum(running(r) for r in cluster.client.list(Replica)[0]) >= n,
            timeout=30,
        )
        cluster.kill9("server")
        cluster.server()
    pids = running_pids(cluster, 20)
    time.sleep(1)
    assert running_pids(cluster, 20) == pids
    assert_one_process_per_replica(cluster, pids)


def test_replica_deleted_while_the_agent_is_down_is_stopped_on_return(cluster: Cluster) -> None:
    cluster.start("controllers")
    cluster.start("agent", "--node-name", "node-a")
    cluster.wait_node_ready("node-a")
    cluster.apply_text(instance("gone", 2, "exec sleep 1000", terminationGracePeriodSeconds=1))
    pids = running_pids(cluster, 2)
    cluster.kill9("agent")
    cluster.stop("controllers")  # nothing recreates the replicas: the agent alone must act
    cluster.client.delete(Replica, "gone-1")
    cluster.client.delete(Replica, "gone-0")
    cluster.start("agent", "--node-name", "node-a")
    wait_for("orphans stopped", lambda: not any(alive(p) for p in pids.values()), timeout=15)
    wait_for("orphan cgroups removed", lambda: not cluster.cgroup_pids() or None, timeout=5)


def test_a_lost_node_is_replaced_and_stops_its_replicas_when_it_returns(
    cluster: Cluster,
) -> None:
    """node-a's agent freezes (SIGSTOP): its heartbeat lease expires, its replicas run again
    on node-b within grace + 2 s, and when it thaws it stops its replaced copies."""
    cluster.start("controllers", "--node-grace-seconds", "2")
    for node in ("node-a", "node-b"):
        cluster.start("agent", "--node-name", node, "--heartbeat-ttl", "2", name=node)
        cluster.wait_node_ready(node)
    cluster.apply_text(instance("spread", 4, "exec sleep 1000", terminationGracePeriodSeconds=1))
    running_pids(cluster, 4)
    on_a = {r.metadata.name for r in cluster.client.list(Replica)[0] if r.spec.nodeName == "node-a"}
    assert on_a, "spread put nothing on node-a"
    old_pids = [pids[0] for pids in cluster.cgroup_pids("node-a").values()]

    frozen_at = time.monotonic()
    cluster.processes["node-a"].send_signal(signal.SIGSTOP)
    try:

        def moved() -> bool:
            replicas = cluster.client.list(Replica)[0]
            here = [r for r in replicas if r.metadata.name in on_a]
            return len(here) == len(on_a) and all(
                r.spec.nodeName == "node-b" and running(r) for r in here
            )

        wait_for("replicas of node-a running on node-b", moved, timeout=20)
        took = time.monotonic() - frozen_at
        assert took < 2 + 2 + 2, f"{took:.1f}s: lease TTL 2 s + grace 2 s + 2 s"
        assert all(alive(pid) for pid in old_pids), "node-a's copies still run while it is away"
    finally:
        cluster.processes["node-a"].send_signal(signal.SIGCONT)
    cluster.wait_node_ready("node-a")
    wait_for("node-a stopped its replaced copies", lambda: not any(alive(p) for p in old_pids))
    wait_for("node-a's cgroups removed", lambda: not cluster.cgroup_pids("node-a") or None)
    assert len(running_pids(cluster, 4)) == 4
