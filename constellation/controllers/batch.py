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


class SlowStart:
    """`run(call, items)`: `call` on each item in batches that start at one call and double
    while every call succeeds, up to `WORKERS`; results in the items' order. After a batch in
    which a call raised, no further batch starts, the first error is raised, and the next
    run starts from one again.

    The batch size carries over from one run to the next, as TCP's congestion window does:
    a controller replacing a lost node's replicas runs many short passes, and restarting
    each from one call spent most of every pass ramping up. Thread-safe: the size is one
    int, read and replaced whole.
    """

    def __init__(self) -> None:
        self._size = 1

    def run(self, call: Callable[[T], U], items: Sequence[T]) -> list[U]:
        results: list[U] = []
        start = 0
        while start < len(items):
            size = self._size
            batch = items[start : start + size]
            try:
                results.extend(_run_batch(call, batch))
            except BaseException:
                self._size = 1
                raise
            start += len(batch)
            if len(batch) == size:  # a full batch succeeded: try twice as many
                self._size = min(size * 2, WORKERS)
        return results


def _run_batch(call: Callable[[T], U], batch: Sequence[T]) -> list[U]:
    if len(batch) == 1:
        return [call(batch[0])]  # no thread for a batch of one
    futures = [_POOL.submit(call, item) for item in batch]
    wait(futures)
    return [future.result() for future in futures]
