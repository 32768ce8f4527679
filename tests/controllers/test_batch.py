"""Slow start: batches of 1, 2, 4, ... up to the pool's size, the size carried from one run to
the next, and back to one after an error, which stops the run after its batch."""

from __future__ import annotations

import threading
import time

import pytest

from constellation.controllers.batch import WORKERS, SlowStart


class Calls:
    """A call that records how many calls were in flight when each started."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.seen: list[tuple[int, int]] = []  # (item, calls in flight at its start)
        self.fail_on = fail_on

    def __call__(self, item: int) -> int:
        with self.lock:
            self.in_flight += 1
            self.seen.append((item, self.in_flight))
        time.sleep(0.05)  # long enough that a batch's calls overlap
        with self.lock:
            self.in_flight -= 1
        if item == self.fail_on:
            raise ValueError(f"call {item} failed")
        return item * 10

    def widest(self) -> int:
        return max(flight for _, flight in self.seen)


def test_batches_double_and_results_keep_the_items_order() -> None:
    calls = Calls()
    assert SlowStart().run(calls, list(range(15))) == [i * 10 for i in range(15)]
    assert calls.widest() == 8  # 1 + 2 + 4 + 8 = 15 items
    assert sorted(item for item, _ in calls.seen[:3]) == [0, 1, 2]
    assert calls.seen[0][1] == 1  # the first call alone


def test_the_batch_size_carries_over_and_is_capped() -> None:
    batches = SlowStart()
    batches.run(Calls(), list(range(15)))
    calls = Calls()
    batches.run(calls, list(range(3 * WORKERS)))
    assert calls.seen[0][1] == 1 and calls.widest() == WORKERS
    assert all(flight > 1 for _, flight in calls.seen[1:16])  # the run started at 16, not 1


def test_an_error_stops_the_run_after_its_batch_and_starts_the_next_from_one() -> None:
    batches = SlowStart()
    batches.run(Calls(), list(range(15)))
    failing = Calls(fail_on=3)
    with pytest.raises(ValueError, match="call 3 failed"):
        batches.run(failing, list(range(100)))
    assert len(failing.seen) == 16  # one batch of 16, no more
    after = Calls()
    batches.run(after, list(range(3)))
    assert [flight for _, flight in after.seen][:1] == [1] and after.widest() == 2
