"""The all-in-one server end to end: Instances applied to its store become isolated, limited,
supervised processes, and what happens to them shows in status, events, `get` and `logs`."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.apis.event import Event
from constellation.apis.instance import Instance
from constellation.apis.replica import Replica
from tests.agent.harness import (
    CLI,
    PROCESSES_PER_REPLICA,
    Cluster,
    alive,
    instance,
    process_uid,
    ready,
    running,
    wait_for,
)
from tests.runtime.conftest import NEEDS_ROOT

pytestmark = NEEDS_ROOT


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running_cluster = Cluster(tmp_path)
    try:
        running_cluster.server()
        yield running_cluster
    finally:
        running_cluster.close()


def events_for(cluster: Cluster, name: str) -> dict[str, Event]:
    events = cluster.client.list(Event)[0]
    return {e.reason: e for e in events if e.involvedObject.name == name}


def test_replicas_run_isolated_as_nobody_with_their_ports(cluster: Cluster) -> None:
    cluster.apply_text(
        instance(
            "web",
            2,
            'exec python3 -m http.server "$PORT_HTTP" --bind 127.0.0.1',
            ports="[{name: http}]",
            readinessProbe="{httpGet: {port: http, path: /}, periodSeconds: 1}",
        )
    )
    for name in ("web-0", "web-1"):
        replica = cluster.wait_replica(name, ready, "Ready")
        assert replica.status.pid is not None and process_uid(replica.status.pid) == 65534
        assert replica.status.nodeName == "node-a" and replica.status.startedAt is not None
        assert replica.status.ports["http"] > 1024
    pids = cluster.cgroup_pids()
    assert len(pids) == 2 and all(len(p) == PROCESSES_PER_REPLICA for p in pids.values())
    ports = {cluster.replica(n).status.ports["http"] for n in ("web-0", "web-1")}  # type: ignore[union-attr]
    assert len(ports) == 2, "each replica gets its own dynamic port"
    got = cluster.cli("get", "replicas").stdout
    assert "web-0" in got and "1/1" in got and "Running" in got
    assert "Started" in events_for(cluster, "web-0")


def test_out_of_memory_is_reported_as_oomkilled_with_an_event(cluster: Cluster) -> None:
    cluster.apply_text(
        instance(
            "hog",
            1,
            "exec python3 -c 'b = bytearray(100 * 2**20); import time; time.sleep(60)'",
            restartPolicy="Never",
            resources="{limits: {memory: 32Mi}}",
        )
    )
    replica = cluster.wait_replica("hog-0", lambda r: r.status.phase == "Failed", "Failed")
    assert replica.status.reason == "OOMKilled"
    assert replica.status.exitCode == 137  # SIGKILL from the kernel's OOM killer
    assert "OOMKilled" in events_for(cluster, "hog-0")
    assert "OOMKilled" in cluster.cli("get", "replicas").stdout


def test_a_crashing_replica_backs_off_and_shows_crashloopbackoff(cluster: Cluster) -> None:
    cluster.apply_text(instance("crash", 1, "echo boom; exit 3"))
    # Between back-offs each restart shows Running for a moment: wait for a back-off.
    replica = cluster.wait_replica(
        "crash-0",
        lambda r: r.status.restarts >= 3 and r.status.reason == "CrashLoopBackOff",
        "restarted 3 times, backing off",
        timeout=20,
    )
    assert replica.status.exitCode == 3
    assert "CrashLoopBackOff" in cluster.cli("get", "replicas").stdout
    assert "boom" in cluster.cli("logs", "crash-0", "--previous").stdout


def test_restart_policy_never_ends_failed(cluster: Cluster) -> None:
    cluster.apply_text(instance("once", 1, "exit 1", restartPolicy="Never"))
    replica = cluster.wait_replica("once-0", lambda r: r.status.phase == "Failed", "Failed")
    assert (replica.status.exitCode, replica.status.reason) == (1, "Error")
    time.sleep(1)
    assert cluster.replica("once-0").status.restarts == 0  # type: ignore[union-attr]


def test_readiness_probe_gates_ready(cluster: Cluster) -> None:
    cluster.apply_text(
        instance(
            "slow",
            1,
            "sleep 2; touch /tmp/ready; exec sleep 1000",
            readinessProbe="{exec: {command: [test, -f, /tmp/ready]}, periodSeconds: 1}",
        )
    )
    replica = cluster.wait_replica("slow-0", running, "Running")
    assert not ready(replica), "ready before its readiness probe passed"
    started = time.monotonic()
    cluster.wait_replica("slow-0", ready, "Ready", timeout=10)
    assert time.monotonic() - started > 0.5
    inst = wait_for(
        "instance ready", lambda: cluster.client.get(Instance, "slow").status.readyReplicas
    )
    assert inst == 1


def test_failing_liveness_probe_restarts_the_replica(cluster: Cluster) -> None:
    cluster.apply_text(
        instance(
            "sick",
            1,
            "sleep 1; touch /tmp/sick; exec sleep 1000",
            livenessProbe="{exec: {command: [test, '!', -f, /tmp/sick]}, "
            "periodSeconds: 1, failureThreshold: 2}",
            terminationGracePeriodSeconds=1,
        )
    )
    first = cluster.wait_replica("sick-0", running, "Running")
    restarted = cluster.wait_replica(
        "sick-0", lambda r: r.status.restarts >= 1 and running(r), "restarted", timeout=20
    )
    assert restarted.status.pid != first.status.pid
    assert "Unhealthy" in events_for(cluster, "sick-0")


def test_delete_stops_processes_within_the_grace_period(cluster: Cluster) -> None:
    # The replica ignores SIGTERM: only the SIGKILL after its 2 s grace ends it.
    cluster.apply_text(
        instance(
            "stubborn",
            2,
            "trap '' TERM; echo trapped; while true; do sleep 0.2; done",
            terminationGracePeriodSeconds=2,
        )
    )
    pids = [cluster.wait_replica(f"stubborn-{i}", running, "Running").status.pid for i in (0, 1)]
    for name in ("stubborn-0", "stubborn-1"):
        wait_for("the trap set", lambda n=name: "trapped" in cluster.cli("logs", n).stdout)
    started = time.monotonic()
    cluster.cli("delete", "instance", "stubborn")
    wait_for("processes gone", lambda: not any(alive(p) for p in pids if p), timeout=10)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 5.0, f"stopped after {elapsed:.1f}s with a 2 s grace period"
    wait_for("cgroups removed", lambda: not cluster.cgroup_pids() or None, timeout=5)
    assert cluster.client.list(Replica)[0] == []


def test_cpu_limit_holds_a_busy_loop_near_a_quarter_core(cluster: Cluster) -> None:
    cluster.apply_text(
        instance("spin", 1, "while :; do :; done", resources="{limits: {cpu: 250m}}")
    )
    cluster.wait_replica("spin-0", running, "Running")
    time.sleep(1)
    out = cluster.cli("top", "replicas").stdout
    row = next(line.split() for line in out.splitlines() if line.startswith("spin-0"))
    millicores = int(row[2])
    assert 150 <= millicores <= 350, out


def test_logs_tail_and_follow(cluster: Cluster) -> None:
    cluster.apply_text(
        instance("talk", 1, "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.1; done")
    )
    cluster.wait_replica("talk-0", running, "Running")
    time.sleep(1)
    tail = cluster.cli("logs", "talk-0", "--tail", "2").stdout.splitlines()
    assert len(tail) == 2 and all(line.startswith("line ") for line in tail)
    command = [CLI, "--data-dir", str(cluster.data_dir), "logs", "talk-0", "-f", "--tail", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
    finally:
        process.kill()
        process.wait()
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == sorted(numbers) and numbers[-1] > numbers[0], numbers
