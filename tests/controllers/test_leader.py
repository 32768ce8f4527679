"""Leader election: two real manager processes against one store, exactly one active; kill -9
the leader and the standby takes over within the lease TTL + 2 s."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.apis.instance import Instance
from constellation.client.client import Client
from constellation.controllers.leader import LEASE_KEY, LeaderElector
from constellation.store import Store
from tests.controllers.manager_child import STAMP
from tests.controllers.test_informer import instance, wait_for

TTL = 3
REPO = Path(__file__).resolve().parents[2]


class ManagerProcess:
    """A child manager whose `LEADING`/`STOPPED` lines are collected with their times."""

    def __init__(self, store_url: str, ttl: int = TTL) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.controllers.manager_child", store_url, str(ttl)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), line.strip()))

    def wait_line(self, prefix: str, timeout: float) -> float | None:
        """When the next line starting with `prefix` came, or None after `timeout`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            self.seen.append(line)
            if line.startswith(prefix):
                return at
        return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def terminate(self, timeout: float = 15) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@pytest.fixture
def spawn(store_url: str) -> Iterator[list[ManagerProcess]]:
    started: list[ManagerProcess] = []
    yield started
    for child in started:
        child.kill()


def holder(store: Store) -> str | None:
    record = store.get(LEASE_KEY)
    return record.value.decode() if record else None


def stamped_by(client: Client, name: str) -> str | None:
    found = client.find(Instance, name)
    return found.metadata.annotations.get(STAMP) if found else None


def test_one_leads_and_the_standby_takes_over_after_kill_9(
    store_url: str, client: Client, spawn: list[ManagerProcess]
) -> None:
    first = ManagerProcess(store_url)
    spawn.append(first)
    assert first.wait_line("LEADING", 20) is not None, first.seen
    second = ManagerProcess(store_url)
    spawn.append(second)
    # the second one is up (it imported everything) yet stands by
    client.create(instance("web"))
    wait_for(lambda: stamped_by(client, "web") == str(first.pid), 10, "the leader's reconcile")
    assert second.wait_line("LEADING", 2 * TTL) is None
    assert f"-{first.pid}-" in (holder(client.store) or "")

    first.kill()
    killed_at = time.monotonic()
    took_over_at = second.wait_line("LEADING", TTL + 10)
    assert took_over_at is not None, second.seen
    takeover = took_over_at - killed_at
    print(f"takeover after kill -9: {takeover:.2f}s (lease TTL {TTL}s)")
    assert takeover <= TTL + 2

    assert f"-{second.pid}-" in (holder(client.store) or "")
    client.create(instance("db"))
    wait_for(lambda: stamped_by(client, "db") == str(second.pid), 10, "the new leader's work")
    # a fresh term relists: the old leader's object is reconciled by the new one too
    wait_for(lambda: stamped_by(client, "web") == str(second.pid), 10, "web re-stamped")

    assert second.terminate() == 0
    assert second.wait_line("STOPPED", 5) is not None
    assert holder(client.store) is None  # released on the way out, not left to expire


def test_a_leader_that_loses_its_lease_stops_leading_at_once(store: Store) -> None:
    events: list[tuple[str, float]] = []
    elector = LeaderElector(
        store,
        ttl=TTL,
        on_started_leading=lambda: events.append(("started", time.monotonic())),
        on_stopped_leading=lambda: events.append(("stopped", time.monotonic())),
    ).start()
    try:
        wait_for(lambda: elector.is_leader, 10, "leadership")
        record = store.get(LEASE_KEY)
        assert record is not None and record.value.decode() == elector.identity
        revoked_at = time.monotonic()
        store.revoke(record.lease)  # as if it had expired
        wait_for(lambda: [e for e, _ in events].count("stopped") == 1, 5, "the step-down")
        stepped_down = events[1][1] - revoked_at
        assert stepped_down <= TTL / 3 + 1.0  # noticed at the next renewal
        # it campaigns again and, with nobody else around, leads again
        wait_for(lambda: elector.is_leader, 10, "leadership again")
    finally:
        elector.stop()
    assert [e for e, _ in events] == ["started", "stopped", "started", "stopped"]
    assert store.get(LEASE_KEY) is None


def test_identity_names_host_and_pid(store: Store) -> None:
    elector = LeaderElector(store)
    assert f"-{os.getpid()}-" in elector.identity
    assert elector.identity != LeaderElector(store).identity
