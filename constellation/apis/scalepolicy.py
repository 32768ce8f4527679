"""`ScalePolicy`: who decides an Instance's replica count, and within which bounds.

While a ScalePolicy targets an Instance it owns `spec.replicas` there: `apply` of the Instance
leaves the count alone. `minReplicas` may be 0 (scale to zero when idle).
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from constellation.apis.cron import Cron
from constellation.apis.duration import PositiveDuration
from constellation.apis.meta import (
    Condition,
    DNSLabel,
    Resource,
    StrictModel,
    Timestamp,
    exactly_one,
    require_unique,
)
from constellation.apis.quantity import Quantity, cpu_millicores, memory_bytes

RESOURCE_METRICS = ("cpu", "memory", "pids")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
Replicas = Annotated[int, Field(ge=0)]


def _metric_name(value: str) -> str:
    if value in RESOURCE_METRICS or _METRIC_NAME.match(value):
        return value
    raise ValueError(
        f'invalid metric "{value}": use cpu, memory, pids or a custom metric name '
        "(letters, digits, '_' and ':')"
    )


class TargetRef(StrictModel):
    kind: Literal["Instance"] = "Instance"
    name: DNSLabel


class MetricTarget(StrictModel):
    """Exactly one: a percentage of the replicas' requests, or an average absolute value."""

    averageUtilization: Annotated[int, Field(ge=1)] | None = None
    averageValue: Quantity | None = None

    @model_validator(mode="after")
    def _one(self) -> MetricTarget:
        exactly_one(self, ("averageUtilization", "averageValue"))
        return self


class MetricSpec(StrictModel):
    resource: Annotated[str, AfterValidator(_metric_name)]
    target: MetricTarget

    @model_validator(mode="after")
    def _target_fits(self) -> MetricSpec:
        value = self.target.averageValue
        if self.target.averageUtilization is not None and self.resource not in RESOURCE_METRICS:
            raise ValueError(
                f"target.averageUtilization needs requests to compare with: custom metric "
                f'"{self.resource}" takes target.averageValue'
            )
        # The value is measured in the metric's own unit: refuse `averageValue: 64Mi` for cpu.
        measure = {"cpu": cpu_millicores, "memory": memory_bytes}.get(self.resource)
        if value is not None and measure is not None:
            try:
                measure(value)
            except ValueError as error:
                raise ValueError(f"target.averageValue: {error}") from None
        return self


class Schedule(StrictModel):
    """From each time `cron` fires, for `duration`, the bounds become these."""

    name: DNSLabel
    cron: Cron
    minReplicas: Replicas | None = None
    maxReplicas: Replicas | None = None  # 0 pauses the target for the duration
    duration: PositiveDuration

    @model_validator(mode="after")
    def _bounds(self) -> Schedule:
        if self.minReplicas is None and self.maxReplicas is None:
            raise ValueError("set minReplicas, maxReplicas or both")
        _check_bounds(self.minReplicas, self.maxReplicas)
        return self


def _check_bounds(low: int | None, high: int | None) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError(f"minReplicas ({low}) must not exceed maxReplicas ({high})")


class ScalingRules(StrictModel):
    stabilizationWindowSeconds: Annotated[int, Field(ge=0, le=3600)] = 0
    maxChangePerMinute: Annotated[int, Field(ge=1)] | None = None


class ScaleUpRules(ScalingRules):
    """Scale up at once by default: load spikes hurt now."""


class ScaleDownRules(ScalingRules):
    """Scale down after 5 minutes of lower demand by default, so bursts do not flap."""

    stabilizationWindowSeconds: Annotated[int, Field(ge=0, le=3600)] = 300


class Behavior(StrictModel):
    scaleUp: ScaleUpRules = Field(default_factory=ScaleUpRules)
    scaleDown: ScaleDownRules = Field(default_factory=ScaleDownRules)


class ScalePolicySpec(StrictModel):
    targetRef: TargetRef
    minReplicas: Replicas = 1
    maxReplicas: Annotated[int, Field(ge=1)]
    metrics: list[MetricSpec] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    behavior: Behavior = Field(default_factory=Behavior)

    @model_validator(mode="after")
    def _consistent(self) -> ScalePolicySpec:
        _check_bounds(self.minReplicas, self.maxReplicas)
        require_unique((metric.resource for metric in self.metrics), "metrics resources")
        require_unique((schedule.name for schedule in self.schedules), "schedules names")
        return self


class MetricStatus(StrictModel):
    resource: str
    averageUtilization: int | None = None
    averageValue: str | None = None


class ScalePolicyStatus(StrictModel):
    currentReplicas: Replicas = 0
    desiredReplicas: Replicas = 0
    lastScaleTime: Timestamp | None = None
    currentMetrics: list[MetricStatus] = Field(default_factory=list)
    observedGeneration: int | None = None
    conditions: list[Condition] = Field(default_factory=list)


class ScalePolicy(Resource):
    """Scales an Instance between bounds, on metrics and on schedules."""

    KIND: ClassVar[str] = "ScalePolicy"
    PLURAL: ClassVar[str] = "scalepolicies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("sp",)

    kind: Literal["ScalePolicy"] = "ScalePolicy"
    spec: ScalePolicySpec
    status: ScalePolicyStatus = Field(default_factory=ScalePolicyStatus)
