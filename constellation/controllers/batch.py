"""Many writes at a time, starting slow: Kubernetes' slowStartBatch.

A controller that replaces 334 replicas of a lost node one write after another waits 334
round trips, and each is slow on a busy machine; the store commits concurrent writes
together, so several in flight finish sooner. Starting with one call and doubling the batch
while every call succeeds keeps a failure that hits every call (the store refusing writes, a
crash) to a handful of calls instead of hundreds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")

# One pool for the process: every controller's batches share it, so no reconciler has to own
# (and close) threads, and a burst cannot start more than this many writes at once.
WORKERS = 16
_POOL = ThreadPoolExecutor(WORKERS, "slow-start")


def slow_start(call: Callable[[T], U], items: Sequence[T]) -> list[U]:
    """`call` on each item in batches of 1, 2, 4, ..., results in the items' order. After a
    batch in which a call raised, no further batch starts and the first error is raised."""
    results: list[U] = []
    start, size = 0, 1
    while start < len(items):
        batch = items[start : start + size]
        if len(batch) == 1:
            results.append(call(batch[0]))  # no thread for a batch of one
        else:
            futures = [_POOL.submit(call, item) for item in batch]
            wait(futures)
            results.extend(future.result() for future in futures)
        start += len(batch)
        size = min(size * 2, WORKERS)
    return results
