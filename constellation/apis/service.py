"""`Service`: one stable address in front of the replicas its selector matches.

Replicas carry their Instance's labels plus `constellation.dev/instance: <name>`, so a selector
of `{constellation.dev/instance: web}` means "every replica of web". Health checking and circuit
breaking are off unless configured: readiness probes already keep unready replicas out.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from constellation.apis.duration import PositiveDuration, seconds
from constellation.apis.instance import PortName, PortNumber, PortRef
from constellation.apis.meta import Condition, Labels, Resource, StrictModel, require_unique

Count = Annotated[int, Field(ge=1)]


class ServicePort(StrictModel):
    name: PortName
    port: PortNumber
    targetPort: PortRef | None = None  # absent: the same number as `port`
    protocol: Literal["TCP", "UDP"] = "TCP"


class LoadBalancing(StrictModel):
    policy: Literal["RoundRobin", "LeastConnections", "Random", "SourceHash"] = "RoundRobin"


class HealthCheck(StrictModel):
    """Active checks by the proxy: a TCP connect, or an HTTP GET of `httpPath` when set."""

    interval: PositiveDuration = "10s"
    timeout: PositiveDuration = "1s"
    healthyThreshold: Count = 2
    unhealthyThreshold: Count = 3
    httpPath: Annotated[str, Field(pattern=r"^/")] | None = None

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> HealthCheck:
        if seconds(self.timeout) > seconds(self.interval):
            raise ValueError(f"timeout ({self.timeout}) must not exceed interval ({self.interval})")
        return self


class CircuitBreaker(StrictModel):
    """Limits per endpoint; an endpoint failing `consecutiveErrors` times is ejected."""

    maxConnections: Count = 1024
    maxPendingRequests: Count = 1024
    consecutiveErrors: Count = 5
    ejectionTime: PositiveDuration = "30s"


class ServiceSpec(StrictModel):
    selector: Labels = Field(min_length=1)
    ports: list[ServicePort] = Field(min_length=1)
    loadBalancing: LoadBalancing = Field(default_factory=LoadBalancing)
    healthCheck: HealthCheck | None = None
    circuitBreaker: CircuitBreaker | None = None

    @model_validator(mode="after")
    def _unique_ports(self) -> ServiceSpec:
        require_unique((port.name for port in self.ports), "ports names")
        require_unique((f"{p.port}/{p.protocol}" for p in self.ports), "ports numbers")
        return self


class Endpoint(StrictModel):
    replica: str
    node: str | None = None
    address: str
    ports: dict[str, PortNumber] = Field(default_factory=dict)
    ready: bool = False


class ServiceStatus(StrictModel):
    endpoints: list[Endpoint] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)


class Service(Resource):
    """A stable address load-balanced over the replicas a selector matches."""

    KIND: ClassVar[str] = "Service"
    PLURAL: ClassVar[str] = "services"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("svc",)

    kind: Literal["Service"] = "Service"
    spec: ServiceSpec
    status: ServiceStatus = Field(default_factory=ServiceStatus)
