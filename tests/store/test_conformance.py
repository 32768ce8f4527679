"""The store contract, run against every backend (see conftest: SQLite and a real etcd)."""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from constellation.store import (
    AlreadyExists,
    Compacted,
    Conflict,
    Event,
    EventType,
    LeaseNotFound,
    NotFound,
    Record,
    Store,
    StoreError,
    Watch,
)
from tests.store import workers

LEASE_TTL = 2  # etcd's minimum lease TTL is about 2 s; SQLite honours any TTL


def drain(watch: Watch, count: int, timeout: float = 10.0) -> list[Event]:
    """Read exactly `count` events (fails on timeout), then check that no extra one follows."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        event = watch.next_event(timeout=max(deadline - time.monotonic(), 0.01))
        assert event is not None, f"only {len(events)} of {count} events arrived"
        events.append(event)
    assert watch.next_event(timeout=0.2) is None, "an unexpected extra event arrived"
    return events


# -- create / get / update / delete ---------------------------------------------------------


def test_create_then_get_returns_the_record(store: Store, p: str) -> None:
    created = store.create(f"{p}a", b"one")
    assert (created.key, created.value, created.version, created.lease) == (f"{p}a", b"one", 1, 0)
    assert created.create_revision == created.mod_revision == store.current_revision()
    assert store.get(f"{p}a") == created
    assert store.get(f"{p}missing") is None


def test_create_of_existing_key_raises_already_exists(store: Store, p: str) -> None:
    store.create(f"{p}a", b"one")
    with pytest.raises(AlreadyExists):
        store.create(f"{p}a", b"two")
    assert store.get(f"{p}a").value == b"one"  # type: ignore[union-attr]


def test_update_bumps_version_and_mod_revision_keeps_create_revision(store: Store, p: str) -> None:
    created = store.create(f"{p}a", b"one")
    updated = store.update(f"{p}a", b"two", created.mod_revision)
    assert updated.value == b"two"
    assert updated.version == 2
    assert updated.create_revision == created.create_revision
    assert updated.mod_revision > created.mod_revision
    assert store.get(f"{p}a") == updated


def test_update_with_stale_revision_raises_conflict_and_changes_nothing(
    store: Store, p: str
) -> None:
    created = store.create(f"{p}a", b"one")
    current = store.update(f"{p}a", b"two", created.mod_revision)
    revision = store.current_revision()
    with pytest.raises(Conflict):
        store.update(f"{p}a", b"three", created.mod_revision)
    assert store.get(f"{p}a") == current
    assert store.current_revision() == revision


def test_update_of_missing_key_raises_not_found(store: Store, p: str) -> None:
    with pytest.raises(NotFound):
        store.update(f"{p}missing", b"x", 1)


def test_delete_returns_its_revision_and_removes_the_key(store: Store, p: str) -> None:
    created = store.create(f"{p}a", b"one")
    revision = store.delete(f"{p}a", created.mod_revision)
    assert revision > created.mod_revision
    assert revision == store.current_revision()
    assert store.get(f"{p}a") is None


def test_delete_errors(store: Store, p: str) -> None:
    with pytest.raises(NotFound):
        store.delete(f"{p}missing")
    created = store.create(f"{p}a", b"one")
    store.update(f"{p}a", b"two", created.mod_revision)
    with pytest.raises(Conflict):
        store.delete(f"{p}a", created.mod_revision)
    assert store.get(f"{p}a") is not None


def test_recreate_after_delete_starts_a_new_life(store: Store, p: str) -> None:
    first = store.create(f"{p}a", b"one")
    store.delete(f"{p}a")
    second = store.create(f"{p}a", b"again")
    assert second.version == 1
    assert second.create_revision > first.create_revision
    again = store.update(f"{p}a", b"three", second.mod_revision)
    assert again.version == 2


def test_update_keeps_the_lease(store: Store, p: str) -> None:
    lease = store.grant_lease(30)
    created = store.create(f"{p}a", b"one", lease=lease)
    updated = store.update(f"{p}a", b"two", created.mod_revision)
    assert created.lease == updated.lease == lease
    store.revoke(lease)


def test_create_with_unknown_lease_raises(store: Store, p: str) -> None:
    with pytest.raises(LeaseNotFound):
        store.create(f"{p}a", b"one", lease=987654321)
    assert store.get(f"{p}a") is None


# -- list ------------------------------------------------------------------------------------


def test_list_is_prefix_scoped_and_key_ordered(store: Store, p: str) -> None:
    for name in ["b", "a", "c/x", "ab"]:
        store.create(f"{p}{name}", name.encode())
    store.create(f"{p[:-1]}x", b"outside")  # shares the prefix minus its final "/"
    records, revision = store.list(p)
    assert [r.key for r in records] == [f"{p}{n}" for n in ["a", "ab", "b", "c/x"]]
    assert revision == store.current_revision()
    assert [r.key for r in store.list(f"{p}a")[0]] == [f"{p}a", f"{p}ab"]
    assert [r.key for r in store.list(p, limit=2)[0]] == [f"{p}a", f"{p}ab"]


def test_list_at_an_old_revision_sees_the_past(store: Store, p: str) -> None:
    a = store.create(f"{p}a", b"a1")
    store.create(f"{p}b", b"b1")
    past = store.current_revision()
    store.update(f"{p}a", b"a2", a.mod_revision)
    store.delete(f"{p}b")
    store.create(f"{p}c", b"c1")
    records, revision = store.list(p, revision=past)
    assert revision == past
    assert [(r.key, r.value) for r in records] == [(f"{p}a", b"a1"), (f"{p}b", b"b1")]
    now, _ = store.list(p)
    assert [(r.key, r.value) for r in now] == [(f"{p}a", b"a2"), (f"{p}c", b"c1")]


def test_reading_or_compacting_a_future_revision_is_an_error(store: Store, p: str) -> None:
    store.create(f"{p}a", b"x")
    with pytest.raises(StoreError, match="future revision"):
        store.list(p, revision=store.current_revision() + 1000)
    with pytest.raises(StoreError, match="future revision"):
        store.compact(store.current_revision() + 1000)


def test_every_write_bumps_the_revision_by_exactly_one(store: Store, p: str) -> None:
    seen = [store.create(f"{p}a", b"1").mod_revision]
    seen.append(store.update(f"{p}a", b"2", seen[-1]).mod_revision)
    seen.append(store.create(f"{p}b", b"1").mod_revision)
    seen.append(store.delete(f"{p}a"))
    seen.append(store.create(f"{p}a", b"3").mod_revision)
    assert seen == list(range(seen[0], seen[0] + 5))
    assert store.current_revision() == seen[-1]


# -- compare-and-swap races --------------------------------------------------------------------


def test_cas_race_between_threads_has_exactly_one_winner(store: Store, p: str) -> None:
    for round_ in range(5):
        key = f"{p}race{round_}"
        expected = store.create(key, b"start").mod_revision
        barrier = threading.Barrier(8)

        def attempt(
            n: int, key: str = key, expected: int = expected, barrier: threading.Barrier = barrier
        ) -> bool:
            barrier.wait()
            try:
                store.update(key, f"winner-{n}".encode(), expected)
            except Conflict:
                return False
            return True

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(attempt, range(8)))
        assert results.count(True) == 1
        winner = results.index(True)
        assert store.get(key).value == f"winner-{winner}".encode()  # type: ignore[union-attr]


def test_create_race_between_threads_has_exactly_one_winner(store: Store, p: str) -> None:
    barrier = threading.Barrier(8)

    def attempt(n: int) -> bool:
        barrier.wait()
        try:
            store.create(f"{p}once", str(n).encode())
        except AlreadyExists:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(attempt, range(8))).count(True) == 1


def test_cas_race_between_processes_has_exactly_one_winner(
    store: Store, store_url: str, p: str
) -> None:
    context = multiprocessing.get_context("spawn")
    key = f"{p}race"
    expected = store.create(key, b"start").mod_revision
    barrier = context.Barrier(4)
    results: multiprocessing.Queue[bool] = context.Queue()
    racers = [
        context.Process(
            target=workers.cas_once,
            args=(store_url, key, expected, f"p{n}".encode(), barrier, results),
        )
        for n in range(4)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
        assert racer.exitcode == 0
    outcomes = [results.get(timeout=5) for _ in racers]
    assert outcomes.count(True) == 1
    assert store.get(key).version == 2  # type: ignore[union-attr]


def test_concurrent_increments_across_processes_lose_no_update(
    store: Store, store_url: str, p: str
) -> None:
    context = multiprocessing.get_context("spawn")
    key = f"{p}counter"
    store.create(key, b"0")
    with context.Pool(3) as pool:
        pool.starmap(workers.increment, [(store_url, key, 100)] * 3)
    assert store.get(key).value == b"300"  # type: ignore[union-attr]


# -- watch ---------------------------------------------------------------------------------


def test_watch_from_an_old_revision_replays_everything_in_order(store: Store, p: str) -> None:
    a = store.create(f"{p}a", b"a1")
    a2 = store.update(f"{p}a", b"a2", a.mod_revision)
    store.create(f"{p[:-1]}-other", b"not mine")
    deleted_at = store.delete(f"{p}a")
    with store.watch(p, a.mod_revision) as watch:
        live = store.create(f"{p}b", b"b1")
        events = drain(watch, 4)
    assert [(e.type, e.key, e.revision) for e in events] == [
        (EventType.PUT, f"{p}a", a.mod_revision),
        (EventType.PUT, f"{p}a", a2.mod_revision),
        (EventType.DELETE, f"{p}a", deleted_at),
        (EventType.PUT, f"{p}b", live.mod_revision),
    ]
    assert [e.prev_value for e in events] == [None, b"a1", b"a2", None]
    # A deletion carries only the key and its revision, as etcd reports it.
    assert events[2].record == Record(f"{p}a", b"", 0, deleted_at, 0, 0)
    assert events[1].record == a2
    assert events[3].record == live


def test_watch_from_now_sees_only_new_events(store: Store, p: str) -> None:
    store.create(f"{p}old", b"x")
    with store.watch(p) as watch:
        created = store.create(f"{p}new", b"y")
        (event,) = drain(watch, 1)
    assert event.record == created


def test_watch_survives_heavy_writes_without_loss_or_duplicates(store: Store, p: str) -> None:
    writers, per_writer = 4, 250
    start = store.current_revision() + 1
    with store.watch(p, start) as watch:

        def write(n: int) -> None:
            record = store.create(f"{p}w{n}", b"0")
            for i in range(1, per_writer):
                record = store.update(f"{p}w{n}", str(i).encode(), record.mod_revision)

        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(write, range(writers)))
        events = drain(watch, writers * per_writer, timeout=60)
    revisions = [e.revision for e in events]
    assert revisions == sorted(set(revisions))
    for n in range(writers):
        values = [e.record.value for e in events if e.key == f"{p}w{n}"]
        assert values == [str(i).encode() for i in range(per_writer)]


def test_two_watches_on_one_store_each_get_every_event(store: Store, p: str) -> None:
    with store.watch(f"{p}a") as wa, store.watch(p) as wall:
        store.create(f"{p}a1", b"1")
        store.create(f"{p}b1", b"2")
        assert [e.key for e in drain(wa, 1)] == [f"{p}a1"]
        assert [e.key for e in drain(wall, 2)] == [f"{p}a1", f"{p}b1"]


def test_closed_watch_stops_iterating(store: Store, p: str) -> None:
    watch = store.watch(p)
    threading.Timer(0.2, watch.close).start()
    assert list(watch) == []
    assert watch.closed


def test_watch_from_a_compacted_revision_raises_compacted(store: Store, p: str) -> None:
    first = store.create(f"{p}a", b"1")
    record = first
    for i in range(5):
        record = store.update(f"{p}a", str(i).encode(), record.mod_revision)
    store.compact(record.mod_revision)
    with pytest.raises(Compacted):
        store.watch(p, first.mod_revision)
    with pytest.raises(Compacted):
        store.list(p, revision=first.mod_revision)
    with pytest.raises(Compacted):
        store.compact(record.mod_revision)
    # The compaction point itself stays readable and watchable.
    assert store.list(p, revision=record.mod_revision)[0] == [record]
    with store.watch(p, record.mod_revision) as watch:
        assert drain(watch, 1)[0].record == record


# -- leases --------------------------------------------------------------------------------


def test_lease_expiry_deletes_its_keys_with_delete_events(store: Store, p: str) -> None:
    lease = store.grant_lease(LEASE_TTL)
    store.create(f"{p}leased", b"x", lease=lease)
    store.create(f"{p}kept", b"y")
    with store.watch(p) as watch:
        event = watch.next_event(timeout=LEASE_TTL + 5)
    assert event is not None
    assert (event.type, event.key, event.prev_value) == (EventType.DELETE, f"{p}leased", b"x")
    assert store.get(f"{p}leased") is None
    assert store.get(f"{p}kept") is not None
    with pytest.raises(LeaseNotFound):
        store.keepalive(lease)


def test_keepalive_keeps_keys_and_creates_no_revision(store: Store, p: str) -> None:
    lease = store.grant_lease(LEASE_TTL)
    store.create(f"{p}leased", b"x", lease=lease)
    revision = store.current_revision()
    deadline = time.monotonic() + LEASE_TTL * 2.5
    while time.monotonic() < deadline:
        assert store.keepalive(lease) == LEASE_TTL
        time.sleep(LEASE_TTL / 4)
    assert store.get(f"{p}leased") is not None
    assert store.current_revision() == revision
    store.revoke(lease)


def test_revoke_deletes_keys_now(store: Store, p: str) -> None:
    lease = store.grant_lease(60)
    for name in "abc":
        store.create(f"{p}{name}", b"x", lease=lease)
    store.revoke(lease)
    assert store.list(p)[0] == []
    with pytest.raises(LeaseNotFound):
        store.revoke(lease)


# -- compaction ----------------------------------------------------------------------------


def test_compaction_under_concurrent_writes_keeps_the_latest_state(store: Store, p: str) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []
    latest: dict[str, bytes] = {}

    def write(n: int) -> None:
        key = f"{p}k{n}"
        try:
            record = store.create(key, b"0")
            i = 0
            while not stop.is_set() or i < 50:
                i += 1
                record = store.update(key, str(i).encode(), record.mod_revision)
            latest[key] = record.value
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    compacted_to = 0
    for _ in range(10):
        time.sleep(0.05)
        compacted_to = store.current_revision() - 5
        store.compact(compacted_to)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    records, revision = store.list(p)
    assert {r.key: r.value for r in records} == latest
    with pytest.raises(Compacted):
        store.list(p, revision=compacted_to - 1)
    # Every revision from the compaction point on is still complete.
    with store.watch(p, compacted_to) as watch:
        replayed = drain(watch, revision - compacted_to + 1, timeout=30)
    assert [e.revision for e in replayed] == list(range(compacted_to, revision + 1))


def test_repeated_compaction_keeps_exactly_one_version_per_key(store: Store, p: str) -> None:
    keys = [f"{p}k{i:02d}" for i in range(20)]
    latest = {key: store.create(key, b"0") for key in keys}
    history = [(record.mod_revision, key, record.value) for key, record in latest.items()]
    compacted_to = 0
    shuffle = random.Random(7).shuffle
    for round_ in range(1, 9):
        # A different order and cut each round, so that a key's old rows straddle the
        # compaction point in one round and fall far below it in the next.
        shuffle(keys)
        for key in keys:
            latest[key] = store.update(key, str(round_).encode(), latest[key].mod_revision)
            history.append((latest[key].mod_revision, key, latest[key].value))
        compacted_to = store.current_revision() - (3 + round_ % 4 * 4)
        store.compact(compacted_to)
    for revision in (compacted_to, compacted_to + 3, store.current_revision()):
        expected: dict[str, bytes] = {}
        for written_at, key, value in history:
            if written_at <= revision:
                expected[key] = value
        records, _ = store.list(p, revision=revision)
        assert [(r.key, r.value) for r in records] == sorted(expected.items())
