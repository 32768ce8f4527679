"""Translation between a `Replica` object and the runtime's plain `UnitSpec`/`UnitStatus`.

The runtime knows nothing of the API kinds; this module is the only place where the two
vocabularies meet. A unit's id is `<namespace>.<name>.<uid prefix>`: it names the cgroup, the
state file and the log directory, and a Replica re-created under the same name (a new uid) is
a different unit, so a replaced replica can never be mistaken for its successor.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from typing import Literal

from constellation.apis.duration import seconds
from constellation.apis.instance import Probe, ReplicaTemplate
from constellation.apis.meta import Condition
from constellation.apis.quantity import cpu_millicores, memory_bytes
from constellation.apis.replica import Replica, ReplicaStatus
from constellation.controllers.base import Key
from constellation.runtime.cgroups import Limits
from constellation.runtime.probes import ProbeSpec
from constellation.runtime.spawn import SpawnSpec
from constellation.runtime.supervisor import UnitSpec, UnitStatus

UID_CHARS = 12
# What a replica's environment holds unless its spec says otherwise (the agent's own PATH,
# e.g. a root-only pyenv, means nothing to a replica running as nobody).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def unit_id(replica: Replica) -> str:
    uid = (replica.metadata.uid or "").replace("-", "")[:UID_CHARS]
    key = Key(replica.metadata.namespace or "default", replica.metadata.name)
    return f"{unit_group(key)}.{uid}"


def unit_group(key: Key) -> str:
    """The supervisor's group of every unit of the replica called `key`."""
    return f"{key.namespace}.{key.name}"


def key_of(unit: str) -> Key:
    namespace, name, _uid = unit.split(".")
    return Key(namespace, name)


def unit_spec(replica: Replica, init: str | None) -> UnitSpec:
    template = replica.spec.template
    backoff = template.restartBackoff
    probes = {
        kind: getattr(template, f"{kind}Probe") for kind in ("readiness", "liveness", "startup")
    }
    return UnitSpec(
        id=unit_id(replica),
        spawn=_spawn_spec(replica.metadata.name, template, init),
        limits=_limits(template),
        ports=tuple((port.name, port.port) for port in template.ports),
        restart_policy=template.restartPolicy,
        backoff_initial=seconds(backoff.initial),
        backoff_max=seconds(backoff.max),
        backoff_reset=seconds(backoff.resetAfter),
        readiness=_probe(probes["readiness"]),
        liveness=_probe(probes["liveness"]),
        startup=_probe(probes["startup"]),
        probe_ports=tuple(
            (kind, port)
            for kind, probe in probes.items()
            if probe is not None and isinstance(port := probe.port(), str)
        ),
        stop_signal=signal.Signals[template.stopSignal],
        grace=float(template.terminationGracePeriodSeconds),
    )


def _spawn_spec(hostname: str, template: ReplicaTemplate, init: str | None) -> SpawnSpec:
    isolation = template.isolation
    return SpawnSpec(
        argv=[*template.command, *template.args],
        env={
            "PATH": DEFAULT_PATH,
            "HOME": "/",
            "HOSTNAME": hostname,
            **{env.name: env.value for env in template.env},
        },
        hostname=hostname,
        log_path="",
        namespaces=frozenset(isolation.namespaces),
        network=isolation.network,
        user=template.user,
        working_dir=template.workingDir,
        read_only_paths=tuple(isolation.readOnlyPaths),
        private_tmp=isolation.privateTmp,
        no_new_privileges=isolation.noNewPrivileges,
        capabilities=tuple(isolation.capabilities),
        init=init,
    )


def _limits(template: ReplicaTemplate) -> Limits:
    limits = template.resources.limits
    return Limits(
        cpu_millicores=cpu_millicores(limits.cpu) if limits.cpu is not None else None,
        memory_bytes=memory_bytes(limits.memory) if limits.memory is not None else None,
        pids=limits.pids,
    )


def _probe(probe: Probe | None) -> ProbeSpec | None:
    if probe is None:
        return None
    common = {
        "initial_delay": float(probe.initialDelaySeconds),
        "period": float(probe.periodSeconds),
        "timeout": float(probe.timeoutSeconds),
        "success_threshold": probe.successThreshold,
        "failure_threshold": probe.failureThreshold,
    }
    if probe.exec is not None:
        return ProbeSpec("exec", command=tuple(probe.exec.command), **common)  # type: ignore[arg-type]
    port = probe.port()
    number = port if isinstance(port, int) else 0  # a name is resolved once ports are known
    if probe.tcpSocket is not None:
        return ProbeSpec("tcp", port=number, **common)  # type: ignore[arg-type]
    assert probe.httpGet is not None
    http = probe.httpGet
    return ProbeSpec(
        "http",
        port=number,
        path=http.path,
        scheme=http.scheme,
        headers=tuple(http.headers.items()),
        **common,  # type: ignore[arg-type]
    )


def replica_status(
    current: ReplicaStatus, unit: UnitStatus, node_name: str, host_ip: str, now: datetime
) -> ReplicaStatus:
    """`current` updated from `unit`; the Ready condition's transition time moves only when
    readiness itself changes, so an unchanged unit yields an equal status (and no write)."""
    ready: Literal["True", "False"] = "True" if unit.ready else "False"
    previous = next((c for c in current.conditions if c.type == "Ready"), None)
    moved = previous is None or previous.status != ready
    condition = Condition(
        type="Ready",
        status=ready,
        reason="" if unit.ready else (unit.reason or "NotReady"),
        lastTransitionTime=now if moved else previous.lastTransitionTime,  # type: ignore[union-attr]
    )
    started = datetime.fromtimestamp(unit.started_at, UTC) if unit.started_at else None
    return current.model_copy(
        update={
            "phase": unit.phase,
            "pid": unit.pid,
            "nodeName": node_name,
            "hostIP": host_ip,
            "startedAt": started,
            "restarts": unit.restarts,
            "exitCode": unit.exit_code,
            "reason": unit.reason,
            "message": unit.message,
            "ports": dict(unit.ports),
            "conditions": [c for c in current.conditions if c.type != "Ready"] + [condition],
        }
    )
