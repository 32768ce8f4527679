"""`Alert`: a condition over metrics that must hold `for` a while before anyone is told.

The spec field is `for`, a Python keyword: the model calls it `for_` and reads and writes
the alias `for` (serialize_by_alias), so dumps and schemas say what users write.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from constellation.apis.duration import Duration
from constellation.apis.meta import (
    Condition,
    Labels,
    QualifiedKey,
    Resource,
    StrictModel,
    Timestamp,
    exactly_one,
)


def _http_url(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or rest.startswith("/"):
        raise ValueError(f'invalid webhook url "{value}": use http://host/... or https://...')
    return value


def _expression(value: str) -> str:
    if not value.strip():
        raise ValueError("expr must not be empty")
    return value


class WebhookTarget(StrictModel):
    """POST the alert as JSON to `url`."""

    url: Annotated[str, AfterValidator(_http_url)]


class CommandTarget(StrictModel):
    """Run `command` with the alert as JSON on standard input."""

    command: list[str] = Field(min_length=1)


class LogTarget(StrictModel):
    """Write the alert to the controller's log. `level` also keeps the entry from being empty:
    in a manifest an empty mapping reads as absent."""

    level: Literal["info", "warning", "error"] = "warning"


class NotifyTarget(StrictModel):
    webhook: WebhookTarget | None = None
    command: CommandTarget | None = None
    log: LogTarget | None = None

    @model_validator(mode="after")
    def _one(self) -> NotifyTarget:
        exactly_one(self, ("webhook", "command", "log"))
        return self


class AlertSpec(StrictModel):
    model_config = ConfigDict(
        validate_by_alias=True, validate_by_name=True, serialize_by_alias=True
    )

    expr: Annotated[str, AfterValidator(_expression)]
    for_: Duration = Field("0s", alias="for")
    severity: Literal["critical", "warning", "info"] = "warning"
    labels: Labels = Field(default_factory=dict)
    annotations: dict[QualifiedKey, str] = Field(default_factory=dict)
    notify: list[NotifyTarget] = Field(default_factory=list)


class AlertStatus(StrictModel):
    state: Literal["inactive", "pending", "firing"] = "inactive"
    since: Timestamp | None = None
    value: Annotated[float, Field(allow_inf_nan=False)] | None = None
    lastEvaluation: Timestamp | None = None
    observedGeneration: int | None = None
    conditions: list[Condition] = Field(default_factory=list)


class Alert(Resource):
    """A metric condition with a duration, a severity and where to send notifications."""

    KIND: ClassVar[str] = "Alert"
    PLURAL: ClassVar[str] = "alerts"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()

    kind: Literal["Alert"] = "Alert"
    spec: AlertSpec
    status: AlertStatus = Field(default_factory=AlertStatus)
