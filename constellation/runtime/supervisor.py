"""Supervision of every replica on a node from inside the agent's own process.

There is no helper process per replica (a containerd shim costs 5-11 MB each): the agent is the
child subreaper of every replica's pid 1, holds a pidfd per replica in one epoll set, and a
single timer thread drives restarts with backoff, probes, stop deadlines and log rotation.

Each unit has a state file (`<state_dir>/<id>.json`) written at every start and exit, and its
cgroup is named after its id. A new agent after a crash `ensure`s the same units: a unit whose
recorded pid still runs the same process (same start time) is adopted through a new pidfd and
not restarted; its exit code, when it ends, is unknowable (it is no longer our child).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from constellation.runtime.cgroups import Cgroup, CgroupManager, Limits, Stats
from constellation.runtime.logs import ReplicaLogs
from constellation.runtime.probes import Outcome, ProbeSpec, ProbeState, Target, check
from constellation.runtime.process import ExitStatus, adopt, reap, signal_pidfd
from constellation.runtime.spawn import Spawned, SpawnError, SpawnSpec, spawn

log = logging.getLogger(__name__)

Phase = Literal["Pending", "Running", "Succeeded", "Failed"]
RestartPolicy = Literal["Always", "OnFailure", "Never"]
ChangeCallback = Callable[[str], None]
EventCallback = Callable[[str, str, str, str], None]  # unit id, reason, message, Normal|Warning

LOG_ROTATE_SECONDS = 5.0
PROBE_WORKERS = 4


@dataclass(frozen=True)
class UnitSpec:
    """One replica as the runtime sees it; `id` names its cgroup, state file and logs."""

    id: str
    spawn: SpawnSpec  # log_path and cgroup_procs are filled in by the supervisor
    limits: Limits = field(default_factory=Limits)
    ports: tuple[tuple[str, int | None], ...] = ()  # name -> fixed port, or None: pick one
    restart_policy: RestartPolicy = "Always"
    backoff_initial: float = 0.1
    backoff_max: float = 300.0
    backoff_reset: float = 600.0
    readiness: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    startup: ProbeSpec | None = None
    probe_ports: tuple[tuple[str, str], ...] = ()  # probe kind -> port name to resolve
    stop_signal: int = signal.SIGTERM
    grace: float = 30.0


@dataclass(frozen=True)
class UnitStatus:
    phase: Phase = "Pending"
    pid: int | None = None
    started_at: float | None = None
    restarts: int = 0
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    ready: bool = False
    ports: Mapping[str, int] = field(default_factory=dict)


@dataclass
class _Unit:
    spec: UnitSpec
    cgroup: Cgroup
    logs: ReplicaLogs
    status: UnitStatus
    pidfd: int | None = None
    start_time: int | None = None  # the pid's /proc start time: guards against pid reuse
    started_mono: float = 0.0
    failures: int = 0  # consecutive failed runs: the backoff exponent
    oom_seen: int = 0
    run: int = 0  # bumped at every start and stop: stale timers and probes check it
    starting: bool = False  # a spawn is in progress, outside the lock
    stopping: bool = False
    forget: bool = False
    kill_reason: str | None = None
    probes: dict[str, ProbeState] = field(default_factory=dict)


class Supervisor:
    """Starts, watches, restarts, probes and stops units; `on_change(id)` after any status
    change (from its own threads: keep the callback short)."""

    def __init__(
        self,
        cgroups: CgroupManager,
        state_dir: str | Path,
        *,
        on_change: ChangeCallback = lambda _id: None,
        on_event: EventCallback = lambda *_args: None,
        log_max_bytes: int = 10 * 2**20,
        spawner: Callable[[SpawnSpec], Spawned] = spawn,
    ) -> None:
        self.cgroups = cgroups
        self.state_dir = Path(state_dir)
        (self.state_dir / "units").mkdir(parents=True, exist_ok=True)
        self.on_change = on_change
        self.on_event = on_event
        self.log_max_bytes = log_max_bytes
        self._spawn = spawner  # spawn in this process, or `Spawner().spawn` in a small one
        self._lock = threading.RLock()
        self._units: dict[str, _Unit] = {}
        self._groups: dict[str, set[str]] = {}
        self._by_fd: dict[int, _Unit] = {}
        self._epoll = select.epoll()
        self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._epoll.register(self._wake, select.EPOLLIN)
        self._closed = threading.Event()
        self._timers = _Timers()
        self._probe_pool = ThreadPoolExecutor(PROBE_WORKERS, thread_name_prefix="probe")
        self._reaper = threading.Thread(target=self._reap_loop, name="reaper", daemon=True)
        self._reaper.start()
        self._timers.every(LOG_ROTATE_SECONDS, self._rotate_logs)

    # -- queries ----------------------------------------------------------------------------

    def status(self, unit_id: str) -> UnitStatus | None:
        with self._lock:
            unit = self._units.get(unit_id)
            return unit.status if unit else None

    def unit_ids(self, group: str | None = None) -> list[str]:
        """Every unit, or those of `group`: the part of an id before its last dot (the agent's
        ids are `<namespace>.<name>.<uid>`, so a group is every unit of one replica name)."""
        with self._lock:
            if group is None:
                return list(self._units)
            return list(self._groups.get(group, ()))

    def recorded_ids(self) -> list[str]:
        """Units known from state files or cgroups: after a restart, what may need adopting
        or stopping."""
        recorded = {path.stem for path in self._state_files()}
        return sorted(recorded | set(self.cgroups.names()) | set(self.unit_ids()))

    def stats(self, unit_id: str) -> Stats | None:
        with self._lock:
            unit = self._units.get(unit_id)
        return unit.cgroup.stats() if unit and unit.status.phase == "Running" else None

    def logs(self, unit_id: str) -> ReplicaLogs:
        return ReplicaLogs(self._log_dir(unit_id), self.log_max_bytes)

    # -- commands ---------------------------------------------------------------------------

    def ensure(self, spec: UnitSpec) -> UnitStatus:
        """Make `spec` run: a no-op for a known unit, adoption of a live one from its state
        file, otherwise a start. Returns the unit's status after that."""
        with self._lock:
            unit = self._units.get(spec.id)
            if unit is not None:
                return unit.status
            unit = self._new_unit(spec)
            self._add(unit)
            if self._adopt(unit):
                return unit.status
            # Processes we hold no record of (an agent killed between spawn and state file)
            # cannot be adopted; starting beside them would run the replica twice.
            if unit.cgroup.pids():
                unit.cgroup.kill()
            if unit.status.phase not in ("Succeeded", "Failed"):
                self._start(unit)
            return unit.status

    def stop(self, unit_id: str, *, grace: float | None = None, forget: bool = True) -> None:
        """Stop a unit gracefully (its stop signal, then SIGKILL to the whole cgroup after
        `grace`); with `forget`, its cgroup, state file and logs go too once it has ended."""
        with self._lock:
            unit = self._units.get(unit_id) or self._recorded_unit(unit_id)
            if unit is None:
                return
            unit.stopping, unit.forget = True, forget
            unit.run += 1
            if unit.starting:
                return  # the spawn in progress sees `stopping` and ends the run at once
            if unit.pidfd is None:
                self._finish_stop(unit)
                return
            signal_pidfd(unit.pidfd, unit.spec.stop_signal)
            deadline = unit.spec.grace if grace is None else grace
            self._timers.after(deadline, self._kill_if_running, unit, unit.run)

    def close(self) -> None:
        """Stop supervising; the replicas keep running for the next agent to adopt."""
        self._closed.set()
        os.eventfd_write(self._wake, 1)
        self._reaper.join(5)
        self._timers.close()
        self._probe_pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for fd in list(self._by_fd):
                os.close(fd)
            self._by_fd.clear()
        self._epoll.close()
        os.close(self._wake)

    # -- starting -----------------------------------------------------------------------------

    def _new_unit(self, spec: UnitSpec) -> _Unit:
        cgroup = self.cgroups.create(spec.id, spec.limits)
        saved = self._load_state(spec.id)
        status = UnitStatus(**saved["status"]) if saved else UnitStatus()
        unit = _Unit(spec, cgroup, self.logs(spec.id), status)
        if saved:
            unit.start_time = saved.get("start_time")
            unit.failures = saved.get("failures", 0)
        return unit

    def _recorded_unit(self, unit_id: str) -> _Unit | None:
        """A unit known only from disk (a previous agent's), to stop and clean up."""
        saved = self._load_state(unit_id)
        cgroup = self.cgroups.open(unit_id)
        if saved is None and cgroup is None:
            return None
        cgroup = cgroup or self.cgroups.create(unit_id, Limits())
        status = UnitStatus(**saved["status"]) if saved else UnitStatus()
        spec = UnitSpec(unit_id, SpawnSpec(argv=["/bin/true"], env={}, hostname="", log_path=""))
        unit = _Unit(spec, cgroup, self.logs(unit_id), status)
        if saved:
            unit.start_time = saved.get("start_time")
            self._adopt(unit)
        self._add(unit)
        return unit

    def _add(self, unit: _Unit) -> None:
        self._units[unit.spec.id] = unit
        self._groups.setdefault(_group(unit.spec.id), set()).add(unit.spec.id)

    def _forget(self, unit_id: str) -> None:
        self._units.pop(unit_id, None)
        members = self._groups.get(_group(unit_id), set())
        members.discard(unit_id)
        if not members:
            self._groups.pop(_group(unit_id), None)

    def _adopt(self, unit: _Unit) -> bool:
        pid, start_time = unit.status.pid, unit.start_time
        if unit.status.phase != "Running" or pid is None or start_time is None:
            return False
        pidfd = adopt(pid, start_time)
        if pidfd is None:
            return False
        unit.oom_seen = unit.cgroup.stats().oom_kills
        unit.started_mono = time.monotonic() - max(0.0, time.time() - (unit.status.started_at or 0))
        self._watch(unit, pidfd)
        self._start_probes(unit)
        log.info("adopted %s (pid %d)", unit.spec.id, pid)
        return True

    def _start(self, unit: _Unit) -> None:
        """Spawn a run of `unit`. Called holding the lock once; the lock is let go during
        the spawn itself (a fork and an exec, milliseconds), so other units start alongside."""
        if unit.stopping:
            return
        spec = unit.spec
        ports = self._ports(unit)
        env = {**spec.spawn.env, **{f"PORT_{_env_name(n)}": str(p) for n, p in ports.items()}}
        unit.run += 1
        unit.starting = True
        unit.oom_seen = unit.cgroup.stats().oom_kills
        request = replace(
            spec.spawn,
            env=env,
            log_path=unit.logs.new_run(),
            cgroup_procs=unit.cgroup.procs_files(),
        )
        self._lock.release()
        try:
            spawned: Spawned | str = self._spawn(request)
        except (SpawnError, OSError) as exc:
            spawned = str(exc)
        finally:
            self._lock.acquire()
            unit.starting = False
        if isinstance(spawned, str):
            if unit.stopping:
                self._finish_stop(unit)
            else:
                self._after_failed_start(unit, spawned, ports)
            return
        self._started(unit, spawned, ports)

    def _started(self, unit: _Unit, spawned: Spawned, ports: Mapping[str, int]) -> None:
        unit.start_time, unit.started_mono = spawned.start_time, time.monotonic()
        unit.kill_reason = None
        ready = unit.spec.readiness is None and unit.spec.startup is None
        self._set(
            unit,
            replace(
                unit.status,
                phase="Running",
                pid=spawned.pid,
                started_at=spawned.started_at,
                reason=None,
                message=None,
                ready=ready,
                ports=ports,
            ),
        )
        self._watch(unit, spawned.pidfd)
        if unit.stopping:  # stopped while it was being spawned: its exit finishes the stop
            unit.cgroup.kill()
            return
        self._start_probes(unit)
        self.on_event(unit.spec.id, "Started", f"started pid {spawned.pid}", "Normal")

    def _after_failed_start(self, unit: _Unit, message: str, ports: Mapping[str, int]) -> None:
        self.on_event(unit.spec.id, "FailedStart", message, "Warning")
        status = replace(unit.status, pid=None, ready=False, ports=ports, exit_code=None)
        self._after_run(unit, replace(status, reason="StartError", message=message), failed=True)

    def _ports(self, unit: _Unit) -> dict[str, int]:
        """Fixed ports as given; dynamic ones picked once and kept across restarts."""
        ports = dict(unit.status.ports)
        for name, number in unit.spec.ports:
            if number is not None:
                ports[name] = number
            elif name not in ports:
                ports[name] = _free_port()
        return ports

    def _watch(self, unit: _Unit, pidfd: int) -> None:
        unit.pidfd = pidfd
        self._by_fd[pidfd] = unit
        self._epoll.register(pidfd, select.EPOLLIN)
        self._save_state(unit)

    # -- exits --------------------------------------------------------------------------------

    def _reap_loop(self) -> None:
        while not self._closed.is_set():
            for fd, _mask in self._epoll.poll():
                if fd == self._wake:
                    continue
                with self._lock:
                    unit = self._by_fd.get(fd)
                    if unit is not None:
                        self._on_exit(unit)

    def _on_exit(self, unit: _Unit) -> None:
        assert unit.pidfd is not None
        exit_status = reap(unit.pidfd) or ExitStatus(None, None)
        self._epoll.unregister(unit.pidfd)
        del self._by_fd[unit.pidfd]
        os.close(unit.pidfd)
        unit.pidfd = None
        unit.run += 1
        with contextlib.suppress(OSError):
            unit.cgroup.kill()  # leftovers of a replica without its own pid namespace
        if unit.stopping:
            self._finish_stop(unit)
            return
        self._after_exit(unit, exit_status)

    def _after_exit(self, unit: _Unit, exit_status: ExitStatus) -> None:
        oom = unit.cgroup.stats().oom_kills > unit.oom_seen
        code = _exit_code(exit_status)
        reason = _exit_reason(oom, code, unit.kill_reason)
        failed = code != 0
        message = _exit_message(code, exit_status, unit.kill_reason)
        if oom:
            self.on_event(unit.spec.id, "OOMKilled", f"out of memory: {message}", "Warning")
        else:
            self.on_event(unit.spec.id, "Exited", message, "Warning" if failed else "Normal")
        if time.monotonic() - unit.started_mono >= unit.spec.backoff_reset:
            unit.failures = 0
        status = replace(unit.status, pid=None, ready=False, exit_code=code)
        self._after_run(unit, replace(status, reason=reason, message=message), failed=failed)

    def _after_run(self, unit: _Unit, status: UnitStatus, *, failed: bool) -> None:
        """A run ended (or never began): restart after a backoff, or end for good."""
        policy = unit.spec.restart_policy
        if policy == "Always" or (policy == "OnFailure" and failed):
            delay = min(unit.spec.backoff_initial * 2**unit.failures, unit.spec.backoff_max)
            unit.failures += 1
            message = f"back-off {delay:g}s restarting; last run {status.reason}: {status.message}"
            self._set(unit, replace(status, reason="CrashLoopBackOff", message=message))
            self._timers.after(delay, self._restart, unit, unit.run)
            return
        phase: Phase = "Failed" if failed else "Succeeded"
        self._set(unit, replace(status, phase=phase))
        with contextlib.suppress(OSError):
            unit.cgroup.remove()

    def _restart(self, unit: _Unit, run: int) -> None:
        with self._lock:
            if unit.run != run or unit.stopping or self._units.get(unit.spec.id) is not unit:
                return
            unit.status = replace(unit.status, restarts=unit.status.restarts + 1)
            unit.cgroup = self.cgroups.create(unit.spec.id, unit.spec.limits)
            self._start(unit)

    # -- stopping -----------------------------------------------------------------------------

    def _kill_if_running(self, unit: _Unit, run: int) -> None:
        with self._lock:
            if unit.run != run or unit.pidfd is None:
                return
            cgroup = unit.cgroup
        log.info("%s did not stop within its grace period: killing its cgroup", unit.spec.id)
        cgroup.kill()

    def _finish_stop(self, unit: _Unit) -> None:
        with contextlib.suppress(OSError):
            unit.cgroup.remove()
        if unit.forget:
            self._forget(unit.spec.id)
            self._state_path(unit.spec.id).unlink(missing_ok=True)
            unit.logs.remove()
        status = replace(unit.status, phase="Failed", pid=None, ready=False, reason="Stopped")
        self._set(unit, status, save=not unit.forget)

    # -- probes -------------------------------------------------------------------------------

    def _start_probes(self, unit: _Unit) -> None:
        unit.probes = {}
        first = "startup" if unit.spec.startup else None
        for kind in ("startup", "liveness", "readiness"):
            probe: ProbeSpec | None = getattr(unit.spec, kind)
            if probe is None or (first and kind != first):
                continue
            unit.probes[kind] = ProbeState(probe, passing=kind == "liveness")
            self._timers.after(probe.initial_delay, self._probe, unit, kind, unit.run)

    def _probe(self, unit: _Unit, kind: str, run: int) -> None:
        with self._lock:
            if unit.run != run or unit.pidfd is None or unit.status.pid is None:
                return
            probe = unit.probes[kind].spec
            target = Target(
                unit.status.pid,
                unit.spec.spawn.user,
                unit.cgroup.procs_files(),
                unit.spec.spawn.network != "host",
            )
            probe = self._resolve_port(unit, kind, probe)
        future = self._probe_pool.submit(check, probe, target)
        future.add_done_callback(lambda done: self._probed(unit, kind, run, done.result()))

    def _resolve_port(self, unit: _Unit, kind: str, probe: ProbeSpec) -> ProbeSpec:
        names = dict(unit.spec.probe_ports)
        if kind not in names:
            return probe
        return replace(probe, port=unit.status.ports[names[kind]])

    def _probed(self, unit: _Unit, kind: str, run: int, outcome: Outcome) -> None:
        with self._lock:
            if unit.run != run or self._closed.is_set():
                return
            state = unit.probes[kind]
            if state.record(outcome):
                self._probe_changed(unit, kind, state.passing, outcome)
            if unit.run == run and kind in unit.probes:
                self._timers.after(state.spec.period, self._probe, unit, kind, run)

    def _probe_changed(self, unit: _Unit, kind: str, passing: bool, outcome: Outcome) -> None:
        if kind == "readiness":
            self._set(unit, replace(unit.status, ready=passing))
            return
        if passing:  # startup passed: liveness and readiness take over
            del unit.probes["startup"]
            self._start_followers(unit)
            return
        message = f"{kind} probe failed: {outcome.message}"
        self.on_event(unit.spec.id, "Unhealthy", message, "Warning")
        unit.kill_reason = message
        assert unit.pidfd is not None
        signal_pidfd(unit.pidfd, unit.spec.stop_signal)
        self._timers.after(unit.spec.grace, self._kill_if_running, unit, unit.run)

    def _start_followers(self, unit: _Unit) -> None:
        ready = unit.spec.readiness is None
        self._set(unit, replace(unit.status, ready=ready))
        for kind in ("liveness", "readiness"):
            probe: ProbeSpec | None = getattr(unit.spec, kind)
            if probe is not None:
                unit.probes[kind] = ProbeState(probe, passing=kind == "liveness")
                self._timers.after(probe.initial_delay, self._probe, unit, kind, unit.run)

    # -- state files, logs ----------------------------------------------------------------------

    def _set(self, unit: _Unit, status: UnitStatus, *, save: bool = True) -> None:
        if status == unit.status:
            return
        unit.status = status
        if save:
            self._save_state(unit)
        self.on_change(unit.spec.id)

    def _state_path(self, unit_id: str) -> Path:
        return self.state_dir / "units" / f"{unit_id}.json"

    def _state_files(self) -> list[Path]:
        return list((self.state_dir / "units").glob("*.json"))

    def _log_dir(self, unit_id: str) -> Path:
        return self.state_dir / "logs" / unit_id

    def _save_state(self, unit: _Unit) -> None:
        state = {
            "status": {**asdict(unit.status), "ports": dict(unit.status.ports)},
            "start_time": unit.start_time,
            "failures": unit.failures,
        }
        path = self._state_path(unit.spec.id)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(path)

    def _load_state(self, unit_id: str) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self._state_path(unit_id).read_text())
        except (OSError, ValueError):
            return None
        return state

    def _rotate_logs(self) -> None:
        with self._lock:
            running = [u.logs for u in self._units.values() if u.pidfd is not None]
        for logs in running:
            with contextlib.suppress(OSError):
                logs.rotate_if_needed()


class _Timers:
    """One thread running callbacks at their time; callbacks must not block for long."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="timers", daemon=True)
        self._thread.start()

    def after(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        with self._changed:
            entry = (time.monotonic() + delay, next(self._order), callback, args)
            heapq.heappush(self._heap, entry)
            self._changed.notify()

    def every(self, period: float, callback: Callable[[], None]) -> None:
        def tick() -> None:
            callback()
            self.after(period, tick)

        self.after(period, tick)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(5)

    def _loop(self) -> None:
        while True:
            with self._changed:
                while not self._closed and not self._due():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._changed.wait(timeout)
                if self._closed:
                    return
                _when, _order, callback, args = heapq.heappop(self._heap)
            try:
                callback(*args)
            except Exception:
                log.exception("timer callback %s failed", getattr(callback, "__name__", callback))

    def _due(self) -> bool:
        return bool(self._heap) and self._heap[0][0] <= time.monotonic()


def _group(unit_id: str) -> str:
    return unit_id.rpartition(".")[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        port: int = probe.getsockname()[1]
        return port


def _env_name(port_name: str) -> str:
    return port_name.upper().replace("-", "_")


def _exit_code(exit_status: ExitStatus) -> int | None:
    if exit_status.code is not None:
        return exit_status.code
    return 128 + exit_status.signal if exit_status.signal is not None else None


def _exit_reason(oom: bool, code: int | None, kill_reason: str | None) -> str:
    if oom:
        return "OOMKilled"
    if kill_reason:
        return "Unhealthy"
    if code is None:
        return "Unknown"  # an adopted process: not our child, so its status is gone
    return "Completed" if code == 0 else "Error"


def _exit_message(code: int | None, exit_status: ExitStatus, kill_reason: str | None) -> str:
    if kill_reason:
        return f"killed: {kill_reason}"
    if exit_status.signal is not None:
        return f"killed by {signal.Signals(exit_status.signal).name} (exit code {code})"
    if code is None:
        return "exited while the agent was away; exit code unknown"
    return f"exit code {code}"
