"""`Node`: a machine that runs replicas, registered and kept alive by its agent.

Cluster-scoped, and named by hostname (which may contain dots, so a DNS subdomain rather than
a label). The agent's heartbeat is a store lease (`spec.leaseId`); when it expires the node
lifecycle controller marks the node NotReady and its replicas are rescheduled.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from constellation.apis.instance import ResourceList
from constellation.apis.meta import Condition, Resource, StrictModel, Timestamp


class NodeSpec(StrictModel):
    unschedulable: bool = False  # cordoned: running replicas stay, no new ones come
    leaseId: int | None = None


class NodeAddress(StrictModel):
    type: Literal["InternalIP", "ExternalIP", "Hostname"]
    address: str


class NodeInfo(StrictModel):
    kernelVersion: str = ""
    osImage: str = ""
    cgroupVersion: Literal["v1", "v2", ""] = ""
    agentVersion: str = ""


class NodeStatus(StrictModel):
    capacity: ResourceList = Field(default_factory=ResourceList)
    allocatable: ResourceList = Field(default_factory=ResourceList)
    addresses: list[NodeAddress] = Field(default_factory=list)
    nodeInfo: NodeInfo = Field(default_factory=NodeInfo)
    conditions: list[Condition] = Field(default_factory=list)
    heartbeatTime: Timestamp | None = None
    # The agent's HTTP endpoint for logs and stats, "host:port"; empty when it serves none.
    agentEndpoint: str = ""


class Node(Resource):
    """A machine running an agent."""

    KIND: ClassVar[str] = "Node"
    PLURAL: ClassVar[str] = "nodes"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("no",)
    NAMESPACED: ClassVar[bool] = False
    NAME_IS_LABEL: ClassVar[bool] = False

    kind: Literal["Node"] = "Node"
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus = Field(default_factory=NodeStatus)

    def ready(self) -> str:
        """The Ready condition's status: "True", "False" or "Unknown" (never reported)."""
        for condition in self.status.conditions:
            if condition.type == "Ready":
                return condition.status
        return "Unknown"


HEARTBEAT_PREFIX = "/heartbeats/nodes/"


def heartbeat_key(node_name: str) -> str:
    """The store key an agent attaches to its heartbeat lease (`spec.leaseId`): it exists
    exactly while the lease is alive, and its DELETE event says the node stopped beating."""
    return f"{HEARTBEAT_PREFIX}{node_name}"
