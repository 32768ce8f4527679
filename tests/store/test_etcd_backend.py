"""etcd-only behaviour, against real etcd processes: crashes, restarts, leases, TLS, auth.

The conformance suite checks the data model on every backend; these tests check what only a
networked store can get wrong. Every assertion is against what the server actually holds or
what a writer was told was committed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from constellation.store import (
    AlreadyExists,
    Conflict,
    Event,
    EventType,
    LeaseNotFound,
    NotFound,
    Store,
    StoreOpenError,
    Unavailable,
    open_store,
)
from constellation.store.etcd import EtcdStore
from constellation.store.keeper import LeaseKeeper
from constellation.store.resume import ResumingWatch
from tests.etcd_server import EtcdCluster, EtcdServer, PortTaken, free_port, make_tls_files

pytestmark = pytest.mark.timeout(90)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    server = EtcdServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store(etcd: EtcdServer) -> Iterator[Store]:
    opened = open_store(etcd.url)
    try:
        yield opened
    finally:
        opened.close()


Ack = tuple[EventType, str, bytes, int]


class Writer(threading.Thread):
    """Keeps changing five keys (create, update, delete by CAS), retrying through outages.

    `acked` holds only writes the store confirmed. A write that failed with `Unavailable` may
    still have committed; its retry then sees a CAS mismatch, which is counted, not recorded.
    """

    def __init__(self, store: Store, prefix: str) -> None:
        super().__init__(name="writer", daemon=True)
        self.store = store
        self.prefix = prefix
        self.acked: list[Ack] = []
        self.unavailable = 0
        self.mismatches = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            try:
                self.step(n)
            except Unavailable:
                self.unavailable += 1
                time.sleep(0.02)
            except (AlreadyExists, Conflict, NotFound):
                self.mismatches += 1
            time.sleep(0.003)

    def step(self, n: int) -> None:
        key = f"{self.prefix}{n % 5}"
        value = f"v{n}".encode()
        current = self.store.get(key)
        if current is None:
            record = self.store.create(key, value)
            self.acked.append((EventType.PUT, key, value, record.mod_revision))
        elif n % 4 == 0:
            revision = self.store.delete(key, current.mod_revision)
            self.acked.append((EventType.DELETE, key, b"", revision))
        else:
            record = self.store.update(key, value, current.mod_revision)
            self.acked.append((EventType.PUT, key, value, record.mod_revision))

    def wait_acked(self, count: int, timeout: float = 30.0) -> None:
        wait_for(lambda: len(self.acked) >= count, timeout, f"{count} acknowledged writes")

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
        assert not self.is_alive()


class Collector(threading.Thread):
    """Reads a ResumingWatch into a list until closed."""

    def __init__(self, watch: ResumingWatch) -> None:
        super().__init__(name="collector", daemon=True)
        self.watch = watch
        self.events: list[Event] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.events.extend(self.watch)
        except BaseException as exc:
            self.error = exc

    def wait_revision(self, revision: int, timeout: float = 30.0) -> None:
        def caught_up() -> bool:
            assert self.error is None, self.error
            return bool(self.events) and self.events[-1].revision >= revision

        wait_for(caught_up, timeout, f"the watch to reach revision {revision}")

    def stop(self) -> None:
        self.watch.close()
        self.join(timeout=10)
        assert not self.is_alive()
        assert self.error is None, self.error


def check_history(store: Store, prefix: str, events: list[Event], start: int, end: int) -> None:
    """The events are every revision start..end exactly once, in order, with correct prev
    values, and replaying them gives what the store holds now."""
    assert [e.revision for e in events] == list(range(start, end + 1))
    state: dict[str, bytes] = {}
    for event in events:
        if event.type is EventType.PUT:
            assert event.prev_value == state.get(event.key), event
            state[event.key] = event.record.value
        else:
            assert event.prev_value == state.pop(event.key), event
    records, _ = store.list(prefix)
    assert state == {r.key: r.value for r in records}


def check_acked(acked: list[Ack], events: list[Event]) -> None:
    by_revision = {e.revision: (e.type, e.key, e.record.value, e.revision) for e in events}
    for ack in acked:
        assert by_revision.get(ack[3]) == ack


def test_kill9_mid_watch_resuming_watch_loses_and_repeats_nothing(
    etcd: EtcdServer, store: Store
) -> None:
    start = store.current_revision() + 1
    raw = store.watch("/w/", start)
    collector = Collector(ResumingWatch(store, "/w/", start))
    writer = Writer(store, "/w/")
    collector.start()
    writer.start()
    try:
        writer.wait_acked(20)
        etcd.kill()
        killed_at = len(writer.acked)
        with pytest.raises(Unavailable, match=r"etcd watch on .* broke"):
            for _ in range(10_000):
                assert raw.next_event(timeout=10) is not None
        wait_for(lambda: writer.unavailable > 0, 10, "the writer to see the outage")
        etcd.restart()
        writer.wait_acked(killed_at + 20)
    finally:
        writer.stop()
    end = store.current_revision()
    collector.wait_revision(end)
    collector.stop()
    raw.close()

    check_history(store, "/w/", collector.events, start, end)
    check_acked(writer.acked, collector.events)
    assert collector.watch.resumes >= 1
    assert writer.acked[0][3] < writer.acked[killed_at - 1][3] < writer.acked[-1][3]


def test_lease_keeper_holds_the_key_then_lets_it_expire(store: Store) -> None:
    ttl = 2  # about etcd's minimum TTL
    lease = store.grant_lease(ttl)
    store.create("/lease/k", b"held", lease=lease)
    watch = store.watch("/lease/", store.current_revision() + 1)
    with LeaseKeeper(store, lease, ttl) as keeper:
        held_until = time.monotonic() + 3 * ttl
        while time.monotonic() < held_until:
            assert store.get("/lease/k") is not None
            time.sleep(0.2)
        assert not keeper.lost
        assert keeper.renewals >= 5
    stopped = time.monotonic()

    event = watch.next_event(timeout=ttl + 3)
    assert event is not None, "no DELETE within ttl + 3 s of stopping the keeper"
    assert (event.type, event.key, event.prev_value) == (EventType.DELETE, "/lease/k", b"held")
    assert time.monotonic() - stopped < ttl + 3
    assert store.get("/lease/k") is None
    with pytest.raises(LeaseNotFound):
        store.keepalive(lease)
    watch.close()


def test_lease_keeper_rides_out_a_restart_and_reports_revocation(
    etcd: EtcdServer, store: Store
) -> None:
    lease = store.grant_lease(2)
    store.create("/lease/k", b"held", lease=lease)
    with LeaseKeeper(store, lease, 2) as keeper:
        etcd.kill()
        wait_for(lambda: isinstance(keeper.last_error, Unavailable), 5, "a failed renewal")
        etcd.restart()
        renewed = keeper.renewals
        wait_for(lambda: keeper.renewals >= renewed + 2, 10, "renewals after the restart")
        assert not keeper.lost
        assert store.get("/lease/k") is not None

        store.revoke(lease)
        assert keeper.wait_lost(timeout=5)
        assert isinstance(keeper.last_error, LeaseNotFound)
    assert store.get("/lease/k") is None


def test_tls_with_client_certificates(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "pki")
    with EtcdServer(tmp_path, tls=tls) as server:
        store = open_store(server.url)
        try:
            created = store.create("/tls/k", b"1")
            updated = store.update("/tls/k", b"2", created.mod_revision)
            assert store.get("/tls/k") == updated
            with pytest.raises(Conflict):
                store.update("/tls/k", b"3", created.mod_revision)
        finally:
            store.close()

        for url in (
            f"etcd://{server.endpoint}?cacert={tls.ca}&timeout=2",  # no client cert
            f"etcd://{server.endpoint}?timeout=2",  # plaintext to a TLS port
        ):
            began = time.monotonic()
            with pytest.raises((StoreOpenError, Unavailable)) as info:
                open_store(url)
            assert time.monotonic() - began < 4
            message = str(info.value)
            assert server.endpoint in message
            assert "\n" not in message


def test_user_and_password_over_plaintext(tmp_path: Path) -> None:
    # A 1 s token TTL shows the store re-authenticating when etcd forgets an idle token.
    with EtcdServer(tmp_path, extra_args=("--auth-token-ttl=1",)) as server:
        server.etcdctl("user", "add", "root:s3cret", "--interactive=false")
        server.etcdctl("role", "add", "root")
        server.etcdctl("user", "grant-role", "root", "root")
        server.etcdctl("auth", "enable")

        store = open_store(f"etcd://root:s3cret@{server.endpoint}")
        try:
            watch = store.watch("/auth/")
            created = store.create("/auth/k", b"1")
            event = watch.next_event(timeout=5)
            assert event is not None
            assert (event.key, event.revision) == ("/auth/k", created.mod_revision)
            time.sleep(2.5)  # the token expires
            updated = store.update("/auth/k", b"2", created.mod_revision)
            assert store.get("/auth/k") == updated
            watch.close()
        finally:
            store.close()

        expected = {
            f"etcd://root:wrong@{server.endpoint}?timeout=2": "authentication failed",
            f"{server.url}?timeout=2": "user name is empty",
        }
        for url, reason in expected.items():
            with pytest.raises(StoreOpenError) as info:
                open_store(url)
            message = str(info.value)
            assert server.endpoint in message
            assert reason in message
            assert "\n" not in message


def test_unreachable_endpoint_fails_fast() -> None:
    port = free_port()
    began = time.monotonic()
    with pytest.raises(Unavailable) as info:
        open_store(f"etcd://127.0.0.1:{port}?timeout=1")
    assert time.monotonic() - began < 2
    message = str(info.value)
    assert message.startswith(f"cannot reach etcd at 127.0.0.1:{port}: ")
    assert "\n" not in message


def test_cluster_failover_keeps_writes_and_watch_whole(tmp_path: Path) -> None:
    with EtcdCluster(tmp_path) as cluster:
        store = open_store(cluster.url)
        assert isinstance(store, EtcdStore)
        try:
            start = store.current_revision() + 1
            collector = Collector(ResumingWatch(store, "/f/", start))
            writer = Writer(store, "/f/")
            collector.start()
            writer.start()
            try:
                writer.wait_acked(20)
                victim = cluster.member_at(store.endpoint)
                victim.kill()
                killed_at = len(writer.acked)
                writer.wait_acked(killed_at + 20)
            finally:
                writer.stop()
            assert store.endpoint != victim.endpoint
            end = store.current_revision()
            collector.wait_revision(end)
            collector.stop()

            check_history(store, "/f/", collector.events, start, end)
            check_acked(writer.acked, collector.events)
            assert collector.watch.resumes >= 1
        finally:
            store.close()


def test_close_ends_open_watches(store: Store) -> None:
    watch = store.watch("/c/")
    store.create("/c/k", b"1")
    assert watch.next_event(timeout=5) is not None
    store.close()
    assert watch.closed
    assert watch.next_event(timeout=0.1) is None


@contextlib.contextmanager
def squatting(port: int) -> Iterator[None]:
    """Someone else listening on `port` of the loopback address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAITs
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        yield


def test_a_picked_port_taken_before_etcd_binds_it_is_picked_again(tmp_path: Path) -> None:
    """The test servers' own start-up race (CI saw it): a port free when picked was bound by
    someone else before etcd started."""
    server = EtcdServer(tmp_path)
    taken = server.client_port
    with squatting(taken), server:
        assert server.client_port != taken
        store = open_store(server.url)
        try:
            store.create("/k", b"v")
            record = store.get("/k")
            assert record is not None and record.value == b"v"
        finally:
            store.close()


def test_a_restart_keeps_its_ports_even_when_one_is_taken(etcd: EtcdServer) -> None:
    """Clients of a restarted server reconnect to the same address: it never moves."""
    port = etcd.client_port
    etcd.kill()
    with squatting(port), pytest.raises(PortTaken):
        etcd.restart()
    assert etcd.client_port == port
    etcd.restart()
    assert etcd.running
