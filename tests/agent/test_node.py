"""The Node an agent registers: what the scheduler and `top` rely on."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import psutil

from constellation.apis.quantity import cpu_millicores, memory_bytes
from tests.agent.harness import Cluster
from tests.runtime.conftest import NEEDS_ROOT

pytestmark = NEEDS_ROOT


def test_node_reports_capacity_reservations_labels_and_endpoint(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        cluster.server(
            "node-x", "--label", "zone=a", "--reserve-cpu", "500m", "--reserve-memory", "256Mi"
        )
        node = cluster.wait_node_ready("node-x")
        status = node.status
        assert cpu_millicores(status.capacity.cpu) == 1000 * len(os.sched_getaffinity(0))
        assert memory_bytes(status.capacity.memory) == psutil.virtual_memory().total
        assert cpu_millicores(status.allocatable.cpu) == cpu_millicores(status.capacity.cpu) - 500
        assert memory_bytes(status.allocatable.memory) == (
            memory_bytes(status.capacity.memory) - 256 * 2**20
        )
        assert node.metadata.labels["zone"] == "a"
        assert node.metadata.labels["constellation.dev/hostname"] == "node-x"
        assert status.nodeInfo.cgroupVersion in ("v1", "v2") and status.nodeInfo.kernelVersion
        assert {a.type for a in status.addresses} == {"InternalIP", "Hostname"}
        assert node.spec.leaseId is not None
        url = f"http://{status.agentEndpoint}/stats?window=0.1"
        with urllib.request.urlopen(url, timeout=5) as response:
            stats = json.load(response)
        assert stats["node"]["memoryTotalBytes"] == psutil.virtual_memory().total
        assert stats["replicas"] == {}
    finally:
        cluster.close()
