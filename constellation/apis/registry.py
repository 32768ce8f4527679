"""Every kind in one table: name lookup for the CLI and manifests, and `get`'s columns.

The CLI renders any kind from this table without knowing kinds itself: NAME, NAMESPACE and
AGE are generic, the columns here are each kind's own (values as strings, no rendering).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from constellation.apis.alert import Alert
from constellation.apis.event import Event
from constellation.apis.instance import Instance
from constellation.apis.meta import API_VERSION, Resource
from constellation.apis.node import Node
from constellation.apis.replica import Replica
from constellation.apis.scalepolicy import ScalePolicy
from constellation.apis.service import Service

USER_KINDS: tuple[type[Resource], ...] = (Instance, Service, ScalePolicy, Alert)
SYSTEM_KINDS: tuple[type[Resource], ...] = (Replica, Node, Event)
ALL_KINDS = USER_KINDS + SYSTEM_KINDS


class UnknownKind(KeyError):
    """A kind name that is not ours. A KeyError, with a readable message (KeyError's own
    str() would print it in quotes)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def names_of(kind: type[Resource]) -> tuple[str, ...]:
    """Every name a kind answers to: `Instance`, `instance`, `instances`, `inst`."""
    return (kind.KIND, kind.KIND.lower(), kind.PLURAL, *kind.SHORT_NAMES)


_BY_KIND = {kind.KIND: kind for kind in ALL_KINDS}
_BY_NAME = {name.lower(): kind for kind in ALL_KINDS for name in names_of(kind)}


def lookup(name: str) -> type[Resource]:
    """The kind named `name` in any spelling `names_of` lists, case-insensitively."""
    kind = _BY_NAME.get(name.lower())
    if kind is None:
        valid = ", ".join(sorted({n for k in ALL_KINDS for n in names_of(k) if n.islower()}))
        raise UnknownKind(f'unknown kind "{name}": valid names are {valid}')
    return kind


def kind_for(api_version: object, kind: object) -> type[Resource]:
    """The model for a manifest's `apiVersion` and `kind`, which must match exactly.
    Takes raw YAML values: a manifest may hold anything there."""
    api_version = api_version if isinstance(api_version, str) else ""
    kind = kind if isinstance(kind, str) else ""
    model = _BY_KIND.get(kind)
    if api_version != API_VERSION or model is None:
        if api_version == API_VERSION:
            valid = ", ".join(k.KIND for k in ALL_KINDS)
            raise UnknownKind(f'unknown kind "{kind}" in {API_VERSION}: valid kinds are {valid}')
        raise UnknownKind(
            f"{kind or '(no kind)'} ({api_version or 'no apiVersion'}) is not a Constellation "
            f"kind (apiVersion: {API_VERSION}); `constellation convert` translates Compose and "
            "Kubernetes manifests"
        )
    return model


R = TypeVar("R", bound=Resource)


@dataclass(frozen=True)
class Column(Generic[R]):
    header: str
    value: Callable[[R], str]


def _ready(obj: Instance) -> str:
    return f"{obj.status.readyReplicas}/{obj.spec.replicas}"


def _replica_ready(obj: Replica) -> str:
    ready = any(c.type == "Ready" and c.status == "True" for c in obj.status.conditions)
    return "1/1" if ready else "0/1"


def _endpoints(obj: Service) -> str:
    shown = [
        f"{endpoint.address}:{port}"
        for endpoint in obj.status.endpoints
        if endpoint.ready
        for port in endpoint.ports.values()
    ]
    if not shown:
        return "<none>"
    more = f" + {len(shown) - 3} more..." if len(shown) > 3 else ""
    return ",".join(shown[:3]) + more


def _node_status(obj: Node) -> str:
    ready = {"True": "Ready", "False": "NotReady"}.get(obj.ready(), "Unknown")
    return ready + (",SchedulingDisabled" if obj.spec.unschedulable else "")


def _or_none(value: object) -> str:
    return "<none>" if value is None or value == "" else str(value)


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in labels.items()) or "<none>"


def _ports(obj: Service) -> str:
    return ",".join(f"{p.name}:{p.port}/{p.protocol}" for p in obj.spec.ports)


_COLUMNS: dict[type[Resource], tuple[Column[Any], ...]] = {
    Instance: (
        Column[Instance]("READY", _ready),
        Column[Instance]("UP-TO-DATE", lambda o: str(o.status.updatedReplicas)),
        Column[Instance]("AVAILABLE", lambda o: str(o.status.availableReplicas)),
    ),
    Service: (Column[Service]("ENDPOINTS", _endpoints),),
    ScalePolicy: (
        Column[ScalePolicy]("TARGET", lambda o: f"Instance/{o.spec.targetRef.name}"),
        Column[ScalePolicy]("MIN", lambda o: str(o.spec.minReplicas)),
        Column[ScalePolicy]("MAX", lambda o: str(o.spec.maxReplicas)),
        Column[ScalePolicy]("REPLICAS", lambda o: str(o.status.currentReplicas)),
    ),
    Alert: (
        Column[Alert]("STATE", lambda o: o.status.state),
        Column[Alert]("SEVERITY", lambda o: o.spec.severity),
    ),
    Replica: (
        Column[Replica]("READY", _replica_ready),
        Column[Replica]("STATUS", lambda o: o.status.reason or o.status.phase),
        Column[Replica]("NODE", lambda o: _or_none(o.spec.nodeName)),
        Column[Replica]("RESTARTS", lambda o: str(o.status.restarts)),
    ),
    Node: (Column[Node]("STATUS", _node_status),),
    Event: (
        Column[Event]("TYPE", lambda o: o.type),
        Column[Event]("REASON", lambda o: o.reason),
        Column[Event](
            "OBJECT", lambda o: f"{o.involvedObject.kind.lower()}/{o.involvedObject.name}"
        ),
        Column[Event]("MESSAGE", lambda o: o.message),
    ),
}

# `get -o wide`: appended after the normal columns.
_WIDE: dict[type[Resource], tuple[Column[Any], ...]] = {
    Instance: (
        Column[Instance]("COMMAND", lambda o: " ".join([*o.spec.command, *o.spec.args])),
        Column[Instance]("STRATEGY", lambda o: o.spec.updateStrategy.type),
        Column[Instance]("SELECTOR", lambda o: _labels(o.replica_labels())),
    ),
    Service: (
        Column[Service]("PORTS", _ports),
        Column[Service]("SELECTOR", lambda o: _labels(o.spec.selector)),
        Column[Service]("POLICY", lambda o: o.spec.loadBalancing.policy),
    ),
    ScalePolicy: (
        Column[ScalePolicy](
            "METRICS", lambda o: ",".join(m.resource for m in o.spec.metrics) or "<none>"
        ),
        Column[ScalePolicy]("DESIRED", lambda o: str(o.status.desiredReplicas)),
    ),
    Alert: (
        Column[Alert]("FOR", lambda o: o.spec.for_),
        Column[Alert]("VALUE", lambda o: _or_none(o.status.value)),
        Column[Alert]("EXPR", lambda o: o.spec.expr),
    ),
    Replica: (
        Column[Replica]("PID", lambda o: _or_none(o.status.pid)),
        Column[Replica]("IP", lambda o: _or_none(o.status.hostIP)),
        Column[Replica]("PORTS", lambda o: _labels({k: str(v) for k, v in o.status.ports.items()})),
        Column[Replica]("REASON", lambda o: _or_none(o.status.reason)),
    ),
    Node: (
        Column[Node]("CPU", lambda o: _or_none(o.status.allocatable.cpu)),
        Column[Node]("MEMORY", lambda o: _or_none(o.status.allocatable.memory)),
        Column[Node]("KERNEL", lambda o: _or_none(o.status.nodeInfo.kernelVersion)),
        Column[Node]("CGROUP", lambda o: _or_none(o.status.nodeInfo.cgroupVersion)),
    ),
    Event: (
        Column[Event]("COUNT", lambda o: str(o.count)),
        Column[Event]("SOURCE", lambda o: _or_none(o.source.component)),
    ),
}


def columns(kind: type[Resource], wide: bool = False) -> tuple[Column[Any], ...]:
    """The kind's own columns for `get` (after NAME, before AGE), plus the wide ones."""
    return _COLUMNS[kind] + (_WIDE[kind] if wide else ())


def row(obj: Resource, wide: bool = False) -> list[str]:
    """One object's values for `columns(type(obj), wide)`."""
    return [column.value(obj) for column in columns(type(obj), wide)]
