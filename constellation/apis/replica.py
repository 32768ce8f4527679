"""`Replica`: one running copy of an Instance (`web-0`), written by controllers, not users.

The replicas controller creates it from the Instance with a stable ordinal, the scheduler sets
`spec.nodeName`, and that node's agent runs `spec.template` and reports in `status`.
`templateHash` tells a rolling update which replicas still run an old template.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from constellation.apis.instance import PortNumber, ReplicaTemplate
from constellation.apis.meta import (
    Condition,
    DNSLabel,
    DNSSubdomain,
    Resource,
    StrictModel,
    Timestamp,
)


class ReplicaSpec(StrictModel):
    instanceName: DNSLabel
    ordinal: Annotated[int, Field(ge=0)]
    nodeName: DNSSubdomain | None = None  # None until scheduled
    template: ReplicaTemplate
    templateHash: str = ""


class ReplicaStatus(StrictModel):
    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"] = "Pending"
    pid: Annotated[int, Field(ge=1)] | None = None
    nodeName: str | None = None
    hostIP: str | None = None
    startedAt: Timestamp | None = None
    restarts: Annotated[int, Field(ge=0)] = 0
    exitCode: int | None = None
    reason: str | None = None  # OOMKilled, CrashLoopBackOff, Evicted, ...
    message: str | None = None
    ports: dict[str, PortNumber] = Field(default_factory=dict)  # port name -> host port
    observedGeneration: int | None = None
    conditions: list[Condition] = Field(default_factory=list)


class Replica(Resource):
    """One running copy of an Instance, bound to a node."""

    KIND: ClassVar[str] = "Replica"
    PLURAL: ClassVar[str] = "replicas"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("rep",)

    kind: Literal["Replica"] = "Replica"
    spec: ReplicaSpec
    status: ReplicaStatus = Field(default_factory=ReplicaStatus)
