"""Health checks of a running replica: exec inside it, a TCP connect, an HTTP GET.

Each check is one blocking call bounded by the probe's timeout, returning pass or fail with a
message for the Event; `ProbeState` turns a series of results into Kubernetes' thresholds
(`successThreshold` passes in a row to pass, `failureThreshold` failures in a row to fail).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from constellation.runtime.process import exec_in

# Probes reach the replica over the host's loopback: with `network: host` its ports are there.
PROBE_HOST = "127.0.0.1"
EXEC_OUTPUT_SHOWN = 200


@dataclass(frozen=True)
class ProbeSpec:
    action: Literal["exec", "tcp", "http"]
    command: tuple[str, ...] = ()
    port: int = 0
    path: str = "/"
    scheme: Literal["http", "https"] = "http"
    headers: tuple[tuple[str, str], ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class Target:
    """What a probe needs of the replica it checks."""

    pid: int
    user: str
    cgroup_procs: Sequence[str]
    network_ns: bool


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str


def check(probe: ProbeSpec, target: Target) -> Outcome:
    """Run `probe` once against `target`."""
    if probe.action == "exec":
        return _check_exec(probe, target)
    if probe.action == "tcp":
        return _check_tcp(probe)
    return _check_http(probe)


def _check_exec(probe: ProbeSpec, target: Target) -> Outcome:
    code, output = exec_in(
        target.pid,
        probe.command,
        user=target.user,
        cgroup_procs=target.cgroup_procs,
        network_ns=target.network_ns,
        timeout=probe.timeout,
    )
    shown = output.decode(errors="replace").strip()[:EXEC_OUTPUT_SHOWN]
    if code is None:
        return Outcome(False, f"exec {probe.command[0]} timed out after {probe.timeout:g}s")
    if code != 0:
        return Outcome(False, f"exec {probe.command[0]} exited {code}: {shown}".rstrip(": "))
    return Outcome(True, "")


def _check_tcp(probe: ProbeSpec) -> Outcome:
    try:
        with socket.create_connection((PROBE_HOST, probe.port), timeout=probe.timeout):
            return Outcome(True, "")
    except OSError as exc:
        return Outcome(False, f"tcp connect to port {probe.port}: {exc.strerror or exc}")


def _check_http(probe: ProbeSpec) -> Outcome:
    # Imported on first use: http.client brings ssl and email, megabytes an agent whose
    # replicas have no HTTP probe would hold for nothing.
    import http.client
    import ssl

    connection: http.client.HTTPConnection
    if probe.scheme == "https":
        # Like Kubernetes: an https probe does not verify the replica's certificate.
        context = ssl._create_unverified_context()
        connection = http.client.HTTPSConnection(
            PROBE_HOST, probe.port, timeout=probe.timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(PROBE_HOST, probe.port, timeout=probe.timeout)
    url = f"{probe.scheme}://{PROBE_HOST}:{probe.port}{probe.path}"
    try:
        connection.request("GET", probe.path, headers=dict(probe.headers))
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(False, f"GET {url}: {exc}")
    finally:
        connection.close()
    if 200 <= status < 400:
        return Outcome(True, "")
    return Outcome(False, f"GET {url}: HTTP {status}")


@dataclass
class ProbeState:
    """Consecutive results against the thresholds; `passing` flips only when one is crossed."""

    spec: ProbeSpec
    passing: bool
    _streak: int = field(default=0)

    def record(self, outcome: Outcome) -> bool:
        """Count `outcome`; True when `passing` changed."""
        if outcome.passed == self.passing:
            self._streak = 0
            return False
        self._streak += 1
        needed = self.spec.success_threshold if outcome.passed else self.spec.failure_threshold
        if self._streak < needed:
            return False
        self.passing, self._streak = outcome.passed, 0
        return True
