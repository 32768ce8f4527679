"""`Instance`: a group of identical isolated processes, the kind users write most.

`ReplicaTemplate` holds what one running copy needs (command, resources, isolation, probes...);
`InstanceSpec` adds how many copies, where and how to roll them. `Replica` reuses the template,
so the agent reads exactly what the user wrote.

Replicas of an Instance carry the Instance's `metadata.labels` plus
`constellation.dev/instance: <name>` (`INSTANCE_LABEL`): Service selectors match those labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator

from constellation.apis.duration import PositiveDuration, seconds
from constellation.apis.meta import (
    AbsolutePath,
    Condition,
    Labels,
    Resource,
    StrictModel,
    exactly_one,
    require_unique,
)
from constellation.apis.quantity import CPUQuantity, MemoryQuantity, cpu_millicores, memory_bytes

INSTANCE_LABEL = "constellation.dev/instance"

_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER = re.compile(r"^([a-z_][a-z0-9_-]{0,31}|[0-9]+(:[0-9]+)?)$")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

CAPABILITIES = (
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYSLOG",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_WAKE_ALARM",
)
# Signals a process can be asked to stop with; a fixed list keeps the schema machine-independent.
STOP_SIGNALS = (
    "SIGTERM",
    "SIGINT",
    "SIGQUIT",
    "SIGHUP",
    "SIGUSR1",
    "SIGUSR2",
    "SIGKILL",
    "SIGWINCH",
    "SIGPWR",
    "SIGABRT",
    "SIGALRM",
)


def port_name(value: str) -> str:
    """An IANA service name, as Kubernetes uses for port names: `http`, `metrics`, `grpc-web`."""
    if (
        len(value) > 15
        or not _PORT_NAME.match(value)
        or "--" in value
        or not any(c.isalpha() for c in value)
    ):
        raise ValueError(
            f'invalid port name "{value}": use at most 15 lowercase letters, digits and '
            "'-' (at least one letter, no '--', not starting or ending with '-')"
        )
    return value


PortName = Annotated[str, AfterValidator(port_name)]
PortNumber = Annotated[int, Field(ge=1, le=65535)]


def _port_ref(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 65535:
            raise ValueError(f"port {value} is out of range: use 1-65535")
        return value
    if isinstance(value, str):
        return port_name(value)
    raise ValueError(f"a port is a number (1-65535) or a port name, not {type(value).__name__}")


# Ports by number or by the name of an entry in `spec.ports` (whose number may be dynamic).
PortRef = Annotated[
    int | str,
    BeforeValidator(_port_ref),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 15},
            ]
        }
    ),
]


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            f'invalid environment variable name "{value}": use letters, digits and "_", '
            "not starting with a digit"
        )
    return value


def _user(value: str) -> str:
    if not _USER.match(value):
        raise ValueError(f'invalid user "{value}": use a user name, a uid, or uid:gid')
    return value


def _capability(value: str) -> str:
    if value in CAPABILITIES:
        return value
    hint = f"CAP_{value.upper()}" if f"CAP_{value.upper()}" in CAPABILITIES else None
    hint = hint or (value.upper() if value.upper() in CAPABILITIES else None)
    suggestion = f' (did you mean "{hint}"?)' if hint else ""
    raise ValueError(f'unknown capability "{value}"{suggestion}')


def _stop_signal(value: str) -> str:
    if value in STOP_SIGNALS:
        return value
    hint = f"SIG{value.upper()}" if f"SIG{value.upper()}" in STOP_SIGNALS else value.upper()
    suggestion = f' (did you mean "{hint}"?)' if hint in STOP_SIGNALS else ""
    raise ValueError(
        f'invalid stop signal "{value}"{suggestion}: use one of {", ".join(STOP_SIGNALS)}'
    )


class EnvVar(StrictModel):
    name: Annotated[str, AfterValidator(_env_name)]
    value: str = ""


class ResourceList(StrictModel):
    """Amounts of cpu, memory and process ids; also a Node's capacity."""

    cpu: CPUQuantity | None = None
    memory: MemoryQuantity | None = None
    pids: Annotated[int, Field(ge=1)] | None = None


class Resources(StrictModel):
    """`requests` are what the scheduler reserves; `limits` are what cgroups enforce."""

    requests: ResourceList = Field(default_factory=ResourceList)
    limits: ResourceList = Field(default_factory=ResourceList)

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        measures: dict[str, Callable[[Any], int]] = {
            "cpu": cpu_millicores,
            "memory": memory_bytes,
            "pids": int,
        }
        for name, measure in measures.items():
            request, limit = getattr(self.requests, name), getattr(self.limits, name)
            if request is not None and limit is not None and measure(request) > measure(limit):
                raise ValueError(
                    f"requests.{name} ({request}) must not exceed limits.{name} ({limit})"
                )
        return self


Namespace = Literal["pid", "mount", "uts", "ipc", "net", "cgroup"]


def _default_namespaces() -> list[Namespace]:
    return ["pid", "mount", "uts", "ipc"]


class Isolation(StrictModel):
    """Which Linux namespaces a replica gets and what it may do inside them."""

    namespaces: list[Namespace] = Field(default_factory=_default_namespaces, min_length=1)
    network: Literal["host", "none", "private"] = "host"
    readOnlyPaths: list[AbsolutePath] = Field(default_factory=list)
    privateTmp: bool = True
    noNewPrivileges: bool = True
    capabilities: list[Annotated[str, AfterValidator(_capability)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Isolation:
        require_unique(self.namespaces, "namespaces")
        require_unique(self.capabilities, "capabilities")
        # `network` decides the net namespace: a private or no network implies one.
        if "net" in self.namespaces and self.network == "host":
            raise ValueError(
                'namespaces: "net" contradicts network: host; set network: none or private instead'
            )
        return self


class ContainerPort(StrictModel):
    name: PortName
    port: PortNumber | None = None  # absent: the agent picks a free host port
    protocol: Literal["TCP", "UDP"] = "TCP"


class RestartBackoff(StrictModel):
    """Delay before restarting a crashed replica: doubles from `initial` up to `max`, and
    starts over once a replica has run for `resetAfter`."""

    initial: PositiveDuration = "100ms"
    max: PositiveDuration = "5m"
    resetAfter: PositiveDuration = "10m"

    @model_validator(mode="after")
    def _ordered(self) -> RestartBackoff:
        if seconds(self.initial) > seconds(self.max):
            raise ValueError(f"initial ({self.initial}) must not exceed max ({self.max})")
        return self


class ExecAction(StrictModel):
    command: list[str] = Field(min_length=1)


class TCPSocketAction(StrictModel):
    port: PortRef


def _header_name(value: str) -> str:
    if not _HEADER.match(value):
        raise ValueError(f'invalid HTTP header name "{value}"')
    return value


class HTTPGetAction(StrictModel):
    path: Annotated[str, Field(pattern=r"^/")] = "/"
    port: PortRef
    scheme: Literal["http", "https"] = "http"
    headers: dict[Annotated[str, AfterValidator(_header_name)], str] = Field(default_factory=dict)


class Probe(StrictModel):
    """A health check; the defaults are Kubernetes'."""

    exec: ExecAction | None = None
    tcpSocket: TCPSocketAction | None = None
    httpGet: HTTPGetAction | None = None
    initialDelaySeconds: Annotated[int, Field(ge=0)] = 0
    periodSeconds: Annotated[int, Field(ge=1)] = 10
    timeoutSeconds: Annotated[int, Field(ge=1)] = 1
    successThreshold: Annotated[int, Field(ge=1)] = 1
    failureThreshold: Annotated[int, Field(ge=1)] = 3

    @model_validator(mode="after")
    def _one_action(self) -> Probe:
        exactly_one(self, ("exec", "tcpSocket", "httpGet"))
        return self

    def port(self) -> int | str | None:
        action = self.tcpSocket or self.httpGet
        return action.port if action else None


class ReplicaTemplate(StrictModel):
    """What one replica runs and how: shared by `Instance.spec` and `Replica.spec.template`."""

    command: list[str] = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    workingDir: AbsolutePath | None = None
    user: Annotated[str, AfterValidator(_user)] = "nobody"
    resources: Resources = Field(default_factory=Resources)
    isolation: Isolation = Field(default_factory=Isolation)
    ports: list[ContainerPort] = Field(default_factory=list)
    restartPolicy: Literal["Always", "OnFailure", "Never"] = "Always"
    restartBackoff: RestartBackoff = Field(default_factory=RestartBackoff)
    readinessProbe: Probe | None = None
    livenessProbe: Probe | None = None
    startupProbe: Probe | None = None
    terminationGracePeriodSeconds: Annotated[int, Field(ge=0)] = 30
    stopSignal: Annotated[
        str,
        AfterValidator(_stop_signal),
        WithJsonSchema({"type": "string", "enum": STOP_SIGNALS}),
    ] = "SIGTERM"

    @model_validator(mode="after")
    def _consistent(self) -> ReplicaTemplate:
        if not self.command[0]:
            raise ValueError("command[0] must name a program, not be empty")
        require_unique((env.name for env in self.env), "env names")
        require_unique((port.name for port in self.ports), "ports names")
        require_unique(
            (f"{p.port}/{p.protocol}" for p in self.ports if p.port is not None), "ports numbers"
        )
        self._check_probes()
        return self

    def _check_probes(self) -> None:
        names = {port.name for port in self.ports}
        for field in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe: Probe | None = getattr(self, field)
            if probe is None:
                continue
            port = probe.port()
            if isinstance(port, str) and port not in names:
                known = ", ".join(sorted(names)) or "none"
                raise ValueError(
                    f'{field}: port "{port}" is not a name in ports (named ports: {known})'
                )
            if field != "readinessProbe" and probe.successThreshold != 1:
                raise ValueError(f"{field}.successThreshold must be 1")


class Placement(StrictModel):
    """Where replicas may go (`nodeSelector`) and how they are spread over the nodes."""

    nodeSelector: Labels = Field(default_factory=dict)
    strategy: Literal["Spread", "BinPack"] = "Spread"
    maxPerNode: Annotated[int, Field(ge=1)] | None = None


_PERCENT = re.compile(r"^([0-9]{1,3})%$")


def _int_or_percent(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match and int(match[1]) <= 100:
            return value
    raise ValueError(f'invalid value "{value}": use a count such as 1 or a percentage such as 25%')


IntOrPercent = Annotated[
    int | str,
    BeforeValidator(_int_or_percent),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^(100|[1-9]?[0-9])%$"},
            ]
        }
    ),
]


class UpdateStrategy(StrictModel):
    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    maxUnavailable: IntOrPercent = 1
    maxSurge: IntOrPercent = 0

    @model_validator(mode="after")
    def _can_progress(self) -> UpdateStrategy:
        if (
            self.type == "RollingUpdate"
            and _is_zero(self.maxUnavailable)
            and _is_zero(self.maxSurge)
        ):
            raise ValueError(
                "maxUnavailable and maxSurge cannot both be 0: the update could not progress"
            )
        return self


def _is_zero(value: int | str) -> bool:
    return value in (0, "0%")


class InstanceSpec(ReplicaTemplate):
    replicas: Annotated[int, Field(ge=0)] = 1
    placement: Placement = Field(default_factory=Placement)
    updateStrategy: UpdateStrategy = Field(default_factory=UpdateStrategy)

    def template(self) -> ReplicaTemplate:
        """The part each replica runs (what `templateHash` is computed over)."""
        return ReplicaTemplate.model_validate(
            self.model_dump(include=set(ReplicaTemplate.model_fields))
        )


class InstanceStatus(StrictModel):
    replicas: Annotated[int, Field(ge=0)] = 0
    readyReplicas: Annotated[int, Field(ge=0)] = 0
    availableReplicas: Annotated[int, Field(ge=0)] = 0
    updatedReplicas: Annotated[int, Field(ge=0)] = 0
    observedGeneration: int | None = None
    conditions: list[Condition] = Field(default_factory=list)


class Instance(Resource):
    """A group of identical isolated processes."""

    KIND: ClassVar[str] = "Instance"
    PLURAL: ClassVar[str] = "instances"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("inst",)

    kind: Literal["Instance"] = "Instance"
    spec: InstanceSpec
    status: InstanceStatus = Field(default_factory=InstanceStatus)

    def replica_labels(self) -> dict[str, str]:
        """The labels every replica of this Instance carries (what Services select on)."""
        return {**self.metadata.labels, INSTANCE_LABEL: self.metadata.name}
