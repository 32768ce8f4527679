"""The work queue between informers and reconcile workers (client-go's workqueue).

Informers fire far more often than reconciles need to run: ten changes to one object while
its key waits must cost one reconcile, not ten. And two workers reconciling one object at
once would race each other's writes. So a key waiting is queued once, a key being processed
is held back until `done`, failures back off exponentially per key, and delayed requeues
live in memory (a reconcile asking "look again in 5 s" writes nothing to the store).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque

from constellation.controllers.base import Key

DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 60.0


class WorkQueue:
    """A set-like FIFO of keys with processing exclusion, delays and per-key backoff.

    Delayed keys sit in a heap and are moved to the queue by whichever `get` call is waiting
    when they fall due (a condition wait with the right timeout): no timer thread to manage.
    """

    def __init__(
        self, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._cond = threading.Condition()
        self._queue: deque[Key] = deque()
        self._dirty: set[Key] = set()  # waiting to be processed (queued or held back)
        self._processing: set[Key] = set()
        self._failures: dict[Key, int] = {}
        # Lazily invalidated heap: an entry counts only if it matches `_due[key]`.
        self._delayed: list[tuple[float, int, Key]] = []
        self._due: dict[Key, float] = {}
        self._sequence = itertools.count()
        self._shutting_down = False

    def add(self, key: Key) -> None:
        """Queue `key` unless it already waits; if it is being processed, queue it after
        `done` so that the change that caused this add is not missed."""
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: Key) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._cond.notify()

    def add_after(self, key: Key, seconds: float) -> None:
        """Queue `key` in `seconds`; an earlier pending due time for it wins."""
        if seconds <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            due = time.monotonic() + seconds
            if key in self._due and self._due[key] <= due:
                return
            self._due[key] = due
            heapq.heappush(self._delayed, (due, next(self._sequence), key))
            # A waiting `get` may sleep past this new, earlier due time: wake them to re-plan.
            self._cond.notify_all()

    def add_rate_limited(self, key: Key) -> None:
        """Queue `key` after its backoff: base_delay * 2**failures, capped at max_delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        self.add_after(key, self.backoff(failures))

    def backoff(self, failures: int) -> float:
        # Cap the exponent too: 2**2000 overflows a float long before anyone waits that long.
        return float(min(self.base_delay * 2 ** min(failures, 64), self.max_delay))

    def forget(self, key: Key) -> None:
        """Reset `key`'s backoff (it succeeded)."""
        with self._cond:
            self._failures.pop(key, None)

    def num_requeues(self, key: Key) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def get(self, timeout: float | None = None) -> Key | None:
        """The next key, now marked as being processed (call `done` with it); None if
        `timeout` passes first or the queue is shut down."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._shutting_down:
                now = time.monotonic()
                self._promote_due(now)
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                wait = self._wait_time(now, deadline)
                if wait is not None and wait <= 0:
                    return None
                self._cond.wait(wait)
            return None

    def _promote_due(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            due, _, key = heapq.heappop(self._delayed)
            if self._due.get(key) == due:
                del self._due[key]
                self._add_locked(key)

    def _wait_time(self, now: float, deadline: float | None) -> float | None:
        waits = [when - now for when in (deadline, self._next_due()) if when is not None]
        return min(waits) if waits else None

    def _next_due(self) -> float | None:
        return self._delayed[0][0] if self._delayed else None

    def done(self, key: Key) -> None:
        """Processing of `key` finished; if it was added meanwhile, it is queued again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                self._queue.append(key)
                self._cond.notify()

    def shutdown(self) -> None:
        """Stop handing out keys: every `get` returns None from now on."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def delayed(self) -> int:
        """How many keys wait for a due time."""
        with self._cond:
            return len(self._due)

    def __len__(self) -> int:
        """Keys ready to be handed out now (not the delayed ones, not those in progress)."""
        with self._cond:
            return len(self._queue)
