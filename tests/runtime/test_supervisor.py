"""The supervisor with real processes and cgroups: restart policies and their backoff, probes,
stop with a grace period, and re-adoption by a new supervisor (an agent restart in-process)."""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from constellation.runtime.cgroups import CgroupManager, Limits, detect, remove_all
from constellation.runtime.linux import set_child_subreaper
from constellation.runtime.probes import ProbeSpec
from constellation.runtime.spawn import SpawnSpec, default_init
from constellation.runtime.spawner import Spawner
from constellation.runtime.supervisor import Supervisor, UnitSpec, UnitStatus
from tests.runtime.conftest import NEEDS_ROOT

pytestmark = NEEDS_ROOT
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Recorder:
    """What the supervisor reported, with when (monotonic)."""

    events: list[tuple[float, str, str]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def on_event(self, unit: str, reason: str, message: str, type_: str) -> None:
        with self.changed:
            self.events.append((time.monotonic(), reason, message))
            self.changed.notify_all()

    def on_change(self, unit: str) -> None:
        with self.changed:
            self.changed.notify_all()

    def times(self, reason: str) -> list[float]:
        with self.changed:
            return [when for when, r, _ in self.events if r == reason]


@pytest.fixture
def cgroups() -> Iterator[CgroupManager]:
    manager = detect(f"constellation-test-{uuid.uuid4().hex[:8]}")
    yield manager
    remove_all(manager)


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Replicas' pid 1s become children of this test process, as they would of the agent."""
    set_child_subreaper(True)
    yield
    set_child_subreaper(False)
    _reap_orphans()


def _reap_orphans() -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def supervisor(
    cgroups: CgroupManager, tmp_path: Path, recorder: Recorder, subreaper: None
) -> Iterator[Supervisor]:
    running = Supervisor(
        cgroups, tmp_path / "state", on_change=recorder.on_change, on_event=recorder.on_event
    )
    yield running
    for unit in running.unit_ids():
        running.stop(unit, grace=0.5)
    wait_until(lambda: not running.unit_ids(), 10)
    running.close()


def unit(name: str, script: str, **options: object) -> UnitSpec:
    spawn = SpawnSpec(
        argv=["sh", "-c", script],
        env={"PATH": PATH},
        hostname=name,
        log_path="",
        init=default_init(),
    )
    return UnitSpec(id=f"default.{name}.{uuid.uuid4().hex[:12]}", spawn=spawn, **options)  # type: ignore[arg-type]


def wait_until(test: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not test():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def status_of(supervisor: Supervisor, spec: UnitSpec) -> UnitStatus:
    status = supervisor.status(spec.id)
    assert status is not None
    return status


def test_backoff_doubles_from_100ms(supervisor: Supervisor, recorder: Recorder) -> None:
    spec = unit("crash", "exit 2", backoff_initial=0.1, backoff_max=10.0)
    supervisor.ensure(spec)
    wait_until(lambda: len(recorder.times("Started")) >= 5, 10)
    starts = recorder.times("Started")[:5]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    for gap, delay in zip(gaps, (0.1, 0.2, 0.4, 0.8), strict=True):
        assert delay <= gap < delay + 0.25, gaps
    status = status_of(supervisor, spec)
    assert status.exit_code == 2 and status.restarts >= 4
    assert status.reason == "CrashLoopBackOff"


def test_backoff_is_capped(supervisor: Supervisor, recorder: Recorder) -> None:
    spec = unit("capped", "exit 1", backoff_initial=0.05, backoff_max=0.1)
    supervisor.ensure(spec)
    wait_until(lambda: len(recorder.times("Started")) >= 6, 10)
    starts = recorder.times("Started")[:6]
    assert starts[-1] - starts[-2] < 0.3


def test_on_failure_ends_on_success_and_never_ends_failed(supervisor: Supervisor) -> None:
    done = unit("done", "exit 0", restart_policy="OnFailure")
    failed = unit("failed", "exit 5", restart_policy="Never")
    supervisor.ensure(done)
    supervisor.ensure(failed)
    wait_until(lambda: status_of(supervisor, done).phase == "Succeeded", 5)
    wait_until(lambda: status_of(supervisor, failed).phase == "Failed", 5)
    assert status_of(supervisor, failed).exit_code == 5
    assert status_of(supervisor, failed).reason == "Error"
    assert status_of(supervisor, done).restarts == 0


def test_tcp_readiness_and_dynamic_port(supervisor: Supervisor) -> None:
    script = 'sleep 1; exec python3 -m http.server "$PORT_WEB" --bind 127.0.0.1'
    readiness = ProbeSpec("http", period=0.2)
    spec = unit(
        "web",
        script,
        ports=(("web", None),),
        readiness=readiness,
        probe_ports=(("readiness", "web"),),
    )
    supervisor.ensure(spec)
    status = status_of(supervisor, spec)
    assert status.phase == "Running" and not status.ready
    assert status.ports["web"] > 0
    wait_until(lambda: status_of(supervisor, spec).ready, 10)


def test_liveness_failure_restarts(supervisor: Supervisor, recorder: Recorder) -> None:
    liveness = ProbeSpec("tcp", port=1, period=0.2, failure_threshold=2)
    spec = unit("dead", "exec sleep 100", liveness=liveness, grace=0.5, backoff_initial=0.05)
    supervisor.ensure(spec)
    first = status_of(supervisor, spec).pid
    wait_until(lambda: status_of(supervisor, spec).restarts >= 1, 10)
    assert recorder.times("Unhealthy")
    wait_until(lambda: status_of(supervisor, spec).pid not in (None, first), 5)


def test_stop_escalates_to_sigkill_after_grace(
    supervisor: Supervisor, cgroups: CgroupManager
) -> None:
    spec = unit("stubborn", "trap '' TERM; echo trapped; while :; do sleep 0.1; done", grace=0.5)
    supervisor.ensure(spec)
    wait_until(lambda: b"trapped" in supervisor.logs(spec.id).read(), 5)
    started = time.monotonic()
    supervisor.stop(spec.id)
    wait_until(lambda: supervisor.status(spec.id) is None, 5)
    assert 0.4 < time.monotonic() - started < 3
    assert spec.id not in cgroups.names()


def test_oom_kill_is_the_exit_reason(supervisor: Supervisor, recorder: Recorder) -> None:
    script = "exec python3 -c 'b = bytearray(100 * 2**20)'"
    spec = unit("hog", script, limits=Limits(memory_bytes=32 * 2**20), restart_policy="Never")
    supervisor.ensure(spec)
    wait_until(lambda: status_of(supervisor, spec).phase == "Failed", 10)
    assert status_of(supervisor, spec).reason == "OOMKilled"
    assert recorder.times("OOMKilled")


def test_a_new_supervisor_adopts_running_units(
    cgroups: CgroupManager, tmp_path: Path, subreaper: None
) -> None:
    first = Supervisor(cgroups, tmp_path / "state")
    spec = unit("long", "exec sleep 100")
    pid = first.ensure(spec).pid
    first.close()
    second = Supervisor(cgroups, tmp_path / "state")
    try:
        adopted = second.ensure(spec)
        assert adopted.pid == pid and adopted.restarts == 0 and adopted.phase == "Running"
        assert spec.id in second.recorded_ids()
        second.stop(spec.id, grace=1)
        wait_until(lambda: second.status(spec.id) is None, 5)
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        second.close()


def test_units_forked_by_the_spawner_are_still_ours_to_reap(
    cgroups: CgroupManager, tmp_path: Path, subreaper: None
) -> None:
    spawner = Spawner()
    running = Supervisor(cgroups, tmp_path / "state", spawner=spawner.spawn)
    try:
        spec = unit("forked", "exit 7", restart_policy="Never")
        running.ensure(spec)
        wait_until(lambda: status_of(running, spec).phase == "Failed", 5)
        assert status_of(running, spec).exit_code == 7  # waitid works: the replica is our child
        missing = unit("missing", "true")
        missing = replace(missing, spawn=replace(missing.spawn, argv=["/no/such/program"]))
        running.ensure(missing)
        wait_until(lambda: status_of(running, missing).reason == "CrashLoopBackOff", 5)
        assert '"/no/such/program"' in (status_of(running, missing).message or "")
        process = spawner._process
        assert process is not None and process.poll() is None
    finally:
        for unit_id in running.unit_ids():
            running.stop(unit_id, grace=0.5)
        wait_until(lambda: not running.unit_ids(), 10)
        running.close()
        spawner.close()
    assert process.poll() is not None, "the spawner outlived its agent side"
