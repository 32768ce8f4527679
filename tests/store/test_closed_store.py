"""A closed store, run against every backend (see conftest: SQLite and a real etcd).

After `close` every operation must raise one clear StoreError, from any thread, and threads
that were inside a call or a watch when it closed must end with that error, `Unavailable` or
the end of their watch, never with a backend's own exception or a crash in grpc.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from constellation.store import Store, StoreError, Unavailable, Watch

Operation = Callable[[Store], object]


def operations(p: str, lease: int, revision: int) -> dict[str, Operation]:
    """Every Store operation but `watch` and `close`, with arguments that work on an open store."""
    return {
        "get": lambda s: s.get(f"{p}a"),
        "list": lambda s: s.list(p),
        "list at a revision": lambda s: s.list(p, revision=revision),
        "current_revision": lambda s: s.current_revision(),
        "create": lambda s: s.create(f"{p}new", b"1"),
        "create with a lease": lambda s: s.create(f"{p}leased", b"1", lease=lease),
        "update": lambda s: s.update(f"{p}a", b"2", revision),
        "delete": lambda s: s.delete(f"{p}a"),
        "delete at a revision": lambda s: s.delete(f"{p}a", revision),
        "grant_lease": lambda s: s.grant_lease(5),
        "keepalive": lambda s: s.keepalive(lease),
        "revoke": lambda s: s.revoke(lease),
        "compact": lambda s: s.compact(revision),
        "watch from an old revision": lambda s: s.watch(p, revision),
    }


def closed_error(operation: Operation, store: Store) -> StoreError:
    """The error `operation` raises on the closed `store`; fails if it raises another kind."""
    with pytest.raises(StoreError) as caught:
        operation(store)
    error = caught.value
    # Unavailable would be retried forever (ResumingWatch, LeaseKeeper): closed is final.
    assert not isinstance(error, Unavailable), error
    assert "closed" in str(error), error
    return error


def assert_every_operation_fails_as_closed(store: Store, ops: dict[str, Operation]) -> None:
    messages = {name: str(closed_error(op, store)) for name, op in ops.items()}
    assert len(set(messages.values())) == 1, messages  # one error, whatever the call


def prepare(store: Store, p: str) -> dict[str, Operation]:
    record = store.create(f"{p}a", b"1")
    return operations(p, store.grant_lease(5), record.mod_revision)


class BlockedReader:
    """A thread blocked reading a watch until the watch ends, then running `then`."""

    def __init__(self, watch: Watch, then: Callable[[], None]) -> None:
        self.watch = watch
        self.then = then
        self.events = 0
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="blocked-reader")
        self.thread.start()

    def _run(self) -> None:
        try:
            for _ in self.watch:
                self.events += 1
            self.then()
        except BaseException as exc:  # handed to the test thread, which asserts on it
            self.error = exc
        finally:
            self.done.set()

    def finish(self, timeout: float = 10.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the reader is still blocked after close"
        if self.error is not None:
            raise self.error


def test_every_operation_after_close_raises_the_closed_error(store: Store, p: str) -> None:
    ops = prepare(store, p)
    store.close()
    assert_every_operation_fails_as_closed(store, {**ops, "watch": lambda s: s.watch(p)})


def test_close_is_idempotent(store: Store, p: str) -> None:
    ops = prepare(store, p)
    store.watch(p)
    store.close()
    store.close()
    assert_every_operation_fails_as_closed(store, ops)


def test_a_thread_blocked_in_a_watch_sees_it_end_then_gets_the_closed_error(
    store: Store, p: str
) -> None:
    ops = prepare(store, p)
    watch = store.watch(p)
    reader = BlockedReader(watch, lambda: assert_every_operation_fails_as_closed(store, ops))
    store.create(f"{p}b", b"1")
    deadline = time.monotonic() + 10
    while reader.events < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reader.events == 1, "the reader never saw the event before close"
    store.close()
    reader.finish()
    assert watch.closed
    # The main thread, too, after the reader is done.
    assert_every_operation_fails_as_closed(store, ops)


def test_rewatch_after_close_from_the_thread_whose_watch_ended_raises(store: Store, p: str) -> None:
    watch = store.watch(p)
    errors: list[StoreError] = []

    def watch_again(s: Store) -> Watch:
        return s.watch(p)

    reader = BlockedReader(watch, lambda: errors.append(closed_error(watch_again, store)))
    time.sleep(0.2)  # let the reader block in the watch
    store.close()
    reader.finish()
    assert [str(error) for error in errors] == [
        str(closed_error(lambda s: s.current_revision(), store))
    ]


def test_close_while_threads_are_in_calls_ends_each_with_a_store_error(
    store: Store, p: str
) -> None:
    """Threads hammering the store while it closes: each stops on a StoreError saying the
    store is closed or unreachable, none on anything else, and close does not wait long."""
    lease = store.grant_lease(5)
    outcomes: dict[str, BaseException] = {}

    def hammer(name: str, call: Callable[[int], object]) -> None:
        try:
            for i in range(1_000_000):
                call(i)
        except BaseException as exc:  # asserted on below, in the test thread
            outcomes[name] = exc

    def watch_briefly(i: int) -> None:
        with store.watch(p) as watch:
            watch.next_event(timeout=0.001)

    calls: dict[str, Callable[[int], object]] = {
        "get": lambda i: store.get(f"{p}{i % 10}"),
        "create": lambda i: store.create(f"{p}{threading.get_ident()}-{i}", b"1"),
        "list": lambda i: store.list(p, limit=5),
        "keepalive": lambda i: store.keepalive(lease),
        "watch": watch_briefly,
    }
    threads = {
        f"{name} {n}": threading.Thread(target=hammer, args=(f"{name} {n}", call))
        for name, call in calls.items()
        for n in range(2)
    }
    for thread in threads.values():
        thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    store.close()
    assert time.monotonic() - started < 2.0
    for name, thread in threads.items():
        thread.join(10)
        assert not thread.is_alive(), f"{name} still running after close"
    assert set(outcomes) == set(threads)
    closed = str(closed_error(lambda s: s.current_revision(), store))
    for name, exc in outcomes.items():
        assert isinstance(exc, StoreError), f"{name}: {exc!r}"
        assert isinstance(exc, Unavailable) or str(exc) == closed, f"{name}: {exc!r}"
