"""`Event`: what happened to an object and why (Scheduled, Started, OOMKilled, BackOff, ...).

Kubernetes' shape, because `describe` users know it: top-level fields, no spec or status.
Repeats of the same event bump `count` and `lastTimestamp` instead of adding objects.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from constellation.apis.meta import Resource, StrictModel, Timestamp


class ObjectReference(StrictModel):
    kind: str
    namespace: str | None = None
    name: str
    uid: str | None = None


class EventSource(StrictModel):
    component: str = ""
    host: str = ""


class Event(Resource):
    """One thing that happened to one object."""

    KIND: ClassVar[str] = "Event"
    PLURAL: ClassVar[str] = "events"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ev",)
    NAME_IS_LABEL: ClassVar[bool] = False

    kind: Literal["Event"] = "Event"
    involvedObject: ObjectReference
    reason: str = Field(min_length=1)
    message: str = ""
    type: Literal["Normal", "Warning"] = "Normal"
    count: Annotated[int, Field(ge=1)] = 1
    firstTimestamp: Timestamp | None = None
    lastTimestamp: Timestamp | None = None
    source: EventSource = Field(default_factory=EventSource)
