"""What the agent says about its machine: the `Node` it registers and keeps alive.

Capacity comes from psutil (cpu count, memory) and the kernel's pid limit; allocatable is
capacity minus what the operator reserves for the system and the agent itself, which is what
the scheduler places replicas against. The heartbeat is a store lease with the key
`heartbeat_key(name)` attached: renewing a lease writes nothing, so an idle node costs the
store no revisions (Kubernetes' node leases, without the object update per beat).
"""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import psutil

from constellation.apis.meta import Condition
from constellation.apis.node import Node, NodeAddress, NodeInfo, NodeStatus
from constellation.apis.quantity import cpu_millicores, memory_bytes

HOSTNAME_LABEL = "constellation.dev/hostname"
PID_MAX = "/proc/sys/kernel/pid_max"


@dataclass(frozen=True)
class NodeConfig:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    reserved_cpu: str | None = None  # e.g. "500m": kept for the system and the agent
    reserved_memory: str | None = None
    address: str | None = None  # None: the first non-loopback IPv4 address, else loopback
    agent_endpoint: str = ""
    cgroup_version: str = ""


def describe_node(config: NodeConfig, existing: Node | None) -> Node:
    """The Node to write: `existing` (kept spec, e.g. cordoning) with fresh status."""
    capacity = _capacity()
    allocatable = {
        "cpu": f"{_minus(capacity['cpu'], config.reserved_cpu, cpu_millicores)}m",
        "memory": _minus(capacity["memory"], config.reserved_memory, memory_bytes),
        "pids": capacity["pids"],
    }
    status = NodeStatus.model_validate(
        {
            "capacity": capacity,
            "allocatable": allocatable,
            "addresses": [
                NodeAddress(type="InternalIP", address=node_address(config)),
                NodeAddress(type="Hostname", address=socket.gethostname()),
            ],
            "nodeInfo": NodeInfo(
                kernelVersion=platform.release(),
                osImage=_os_image(),
                cgroupVersion=config.cgroup_version,  # type: ignore[arg-type]
                agentVersion=_agent_version(),
            ),
            "conditions": [Condition(type="Ready", status="True", reason="AgentReady")],
            "agentEndpoint": config.agent_endpoint,
        }
    )
    labels = {HOSTNAME_LABEL: config.name, **config.labels}
    if existing is None:
        node = Node.model_validate({"metadata": {"name": config.name}})
    else:
        node = existing.model_copy(deep=True)
    node.metadata.labels = {**node.metadata.labels, **labels}
    node.status = status
    return node


def _minus(total: str | int, reserved: str | None, measure: Callable[[str], int]) -> int:
    return max(0, measure(str(total)) - (measure(reserved) if reserved else 0))


def node_address(config: NodeConfig) -> str:
    if config.address:
        return config.address
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return "127.0.0.1"


def _capacity() -> dict[str, str | int]:
    with open(PID_MAX) as pid_max:
        pids = int(pid_max.read())
    cpus = len(os.sched_getaffinity(0))
    return {"cpu": str(cpus), "memory": str(psutil.virtual_memory().total), "pids": pids}


def _os_image() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        return ""


def _agent_version() -> str:
    try:
        return version("constellation")
    except PackageNotFoundError:
        return ""
