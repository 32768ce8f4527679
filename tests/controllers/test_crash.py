"""Crash safety of the whole controller manager: `constellation controllers` killed with
SIGKILL at many points during scale-ups of 50 replicas, then restarted, converges to exactly
50 replicas per Instance, none duplicated, none lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from constellation.apis.instance import Instance
from constellation.apis.replica import Replica
from constellation.client.client import Client
from tests.controllers.simulate import make_node

CLI = str(Path(sys.executable).parent / "constellation")
REPLICAS = 50
KILLS = 20


def start_manager(store_url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                CLI,
                "--store",
                store_url,
                "controllers",
                "--lease-ttl",
                "2",
                "--node-grace-seconds",
                "3600",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def replicas_of(client: Client, name: str) -> list[Replica]:
    return [r for r in client.list(Replica, "default")[0] if r.spec.instanceName == name]


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def instance(name: str) -> Instance:
    return Instance.model_validate(
        {"metadata": {"name": name}, "spec": {"replicas": REPLICAS, "command": ["sleep", "1"]}}
    )


def test_sigkill_during_scale_ups_converges_exactly(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    make_node(client, "node-a", cpu="1000", memory="1000Gi", pids=1_000_000, lease_ttl=3600)
    points = random.Random(4).sample(range(1, REPLICAS), KILLS)
    log = tmp_path / "manager.log"
    killed_at = []
    for i, point in enumerate(points):
        name = f"app-{i}"
        client.create(instance(name))
        _, revision = client.list(Replica)
        # A watch sees each created replica within a millisecond: a poll would be too late for
        # a manager that creates 50 in about 0.2 s.
        with client.watch(Replica, "default", revision) as created:
            manager = start_manager(store_url, log)
            try:
                seen = 0
                while seen < point:
                    event = created.next_event(timeout=60)
                    assert event is not None, f"{name}: only {seen} replicas after 60 s"
                    seen += event.object.spec.instanceName == name
            finally:
                os.kill(manager.pid, signal.SIGKILL)
                manager.wait(timeout=10)
        killed_at.append(len(replicas_of(client, name)))
    # Most kills landed mid-scale-up (the store is read right after the kill).
    assert sum(count < REPLICAS for count in killed_at) >= KILLS // 2, killed_at

    manager = start_manager(store_url, log)
    try:
        names = [f"app-{i}" for i in range(KILLS)]
        wait_for(
            lambda: all(
                len(replicas_of(client, n)) == REPLICAS
                and all(r.spec.nodeName for r in replicas_of(client, n))
                for n in names
            ),
            120,
            "every Instance at 50 bound replicas",
        )
    finally:
        manager.send_signal(signal.SIGTERM)
        assert manager.wait(timeout=30) == 0
    for name in names:
        owner = client.get(Instance, name)
        replicas = replicas_of(client, name)
        assert sorted(r.metadata.name for r in replicas) == sorted(
            f"{name}-{n}" for n in range(REPLICAS)
        )
        assert len({r.metadata.uid for r in replicas}) == REPLICAS
        assert all(r.metadata.ownerReferences[0].uid == owner.metadata.uid for r in replicas)
