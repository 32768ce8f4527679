"""A watch that survives the store going away: re-watch from the last revision seen + 1.

A backend watch ends with `Unavailable` when its connection breaks (etcd restarted, a failover
to another endpoint, which python3-etcd3 handles by dropping every watch). Every consumer would
otherwise repeat the same loop; this one does it once, for any backend, using only the Store
protocol. Because a `Watch` raises its failure only after every earlier event has been read,
resuming from the last revision + 1 neither loses nor repeats an event.
"""

from __future__ import annotations

import threading
import time

from constellation.store.errors import Unavailable
from constellation.store.protocol import Store
from constellation.store.types import Event, Stream, Watch


class ResumingWatch(Stream[Event]):
    """Events under `prefix` from `start_revision` (0: from now on), across store outages.

    `Compacted` and other errors are raised to the reader: history it needs is gone and it must
    relist. `Unavailable` never is; the watch retries with capped exponential backoff until
    closed.
    """

    def __init__(
        self,
        store: Store,
        prefix: str,
        start_revision: int = 0,
        *,
        min_backoff: float = 0.05,
        max_backoff: float = 2.0,
    ) -> None:
        self._store = store
        self._prefix = prefix
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._backoff = min_backoff
        self._closed = threading.Event()
        self._lock = threading.Lock()
        # "From now on" must still be a fixed revision, or a resume could skip what happened
        # between the first watch and its failure.
        self._next = start_revision or store.current_revision() + 1
        self._floor = self._next
        self._watch: Watch | None = store.watch(prefix, self._next)
        self.resumes = 0

    @property
    def next_revision(self) -> int:
        """The revision the watch would resume from."""
        return self._next

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, or None once `timeout` passes or the watch is closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            watch = self._watch or self._reopen(deadline)
            if watch is None:
                return None
            try:
                event = watch.next_event(_remaining(deadline))
            except Unavailable:
                self._drop(watch)
                continue
            if event is None:
                if watch.closed and not self._closed.is_set():
                    self.close()  # the store itself was closed under us
                if _expired(deadline):
                    return None
                continue
            if event.revision < self._floor:
                continue  # a backend that replays is not our reader's problem
            self._next = event.revision + 1
            return event
        return None

    def _reopen(self, deadline: float | None) -> Watch | None:
        while not self._closed.is_set():
            try:
                watch = self._store.watch(self._prefix, self._next)
            except Unavailable:
                if _expired(deadline) or self._closed.wait(self._pause(deadline)):
                    return None
                continue
            with self._lock:
                if self._closed.is_set():
                    watch.close()
                    return None
                self._watch = watch
            self._floor = self._next
            self._backoff = self._min_backoff
            self.resumes += 1
            return watch
        return None

    def _pause(self, deadline: float | None) -> float:
        pause = self._backoff
        self._backoff = min(self._backoff * 2, self._max_backoff)
        remaining = _remaining(deadline)
        return pause if remaining is None else min(pause, remaining)

    def _drop(self, watch: Watch) -> None:
        with self._lock:
            if self._watch is watch:
                self._watch = None
        watch.close()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()


def resuming_watch(store: Store, prefix: str, start_revision: int = 0) -> ResumingWatch:
    """A `ResumingWatch` with the default backoff (50 ms doubling to 2 s)."""
    return ResumingWatch(store, prefix, start_revision)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline
