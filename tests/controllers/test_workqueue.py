"""The work queue merges duplicates, never hands one key to two workers, backs off per key
and holds delayed requeues in order."""

from __future__ import annotations

import threading
import time
from collections import Counter

from constellation.controllers.base import Key
from constellation.controllers.workqueue import WorkQueue

A, B, C = Key("default", "a"), Key("default", "b"), Key(None, "c")


def test_duplicates_waiting_are_queued_once() -> None:
    queue = WorkQueue()
    for key in (A, B, A, A, C, B):
        queue.add(key)
    assert len(queue) == 3
    assert [queue.get(0), queue.get(0), queue.get(0)] == [A, B, C]
    assert queue.get(0) is None


def test_a_key_added_while_processing_comes_back_after_done() -> None:
    queue = WorkQueue()
    queue.add(A)
    assert queue.get(0) == A
    queue.add(A)
    queue.add(A)
    assert queue.get(0.05) is None  # held back while A is processed
    queue.done(A)
    assert queue.get(0) == A
    queue.done(A)
    assert queue.get(0.05) is None  # the two adds were merged into one


def test_one_key_is_never_processed_by_two_of_eight_workers() -> None:
    queue = WorkQueue()
    keys = [Key("default", f"k{i}") for i in range(5)]
    active: Counter[Key] = Counter()
    processed: Counter[Key] = Counter()
    overlaps: list[Key] = []
    lock = threading.Lock()

    def worker() -> None:
        while (key := queue.get()) is not None:
            with lock:
                active[key] += 1
                if active[key] > 1:
                    overlaps.append(key)
            time.sleep(0.001)
            with lock:
                active[key] -= 1
                processed[key] += 1
            queue.done(key)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(400):
            queue.add(keys[round_ % len(keys)])
            if round_ % 7 == 0:
                time.sleep(0.001)
        deadline = time.monotonic() + 10
        while (len(queue) or sum(active.values())) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        queue.shutdown()
        for thread in threads:
            thread.join(5)
    assert not overlaps
    assert set(processed) == set(keys)
    assert sum(processed.values()) < 400  # and bursts were merged
    assert not any(thread.is_alive() for thread in threads)


def test_backoff_doubles_per_failure_caps_and_resets_on_forget() -> None:
    queue = WorkQueue(base_delay=0.005, max_delay=0.04)
    assert [queue.backoff(n) for n in range(5)] == [0.005, 0.01, 0.02, 0.04, 0.04]
    assert queue.backoff(10_000) == 0.04
    waits = []
    for _ in range(4):
        started = time.monotonic()
        queue.add_rate_limited(A)
        assert queue.get(2) == A
        waits.append(time.monotonic() - started)
        queue.done(A)
    assert queue.num_requeues(A) == 4
    # Lower bounds only: a busy machine makes waits longer, never shorter.
    for wait, expected in zip(waits, [0.005, 0.01, 0.02, 0.04], strict=True):
        assert wait >= expected * 0.9
    queue.forget(A)
    assert queue.num_requeues(A) == 0
    started = time.monotonic()
    queue.add_rate_limited(A)
    assert queue.get(2) == A
    assert time.monotonic() - started < 0.04


def test_add_after_hands_keys_out_in_due_order() -> None:
    queue = WorkQueue()
    started = time.monotonic()
    queue.add_after(C, 0.15)
    queue.add_after(A, 0.05)
    queue.add_after(B, 0.10)
    assert len(queue) == 0 and queue.delayed() == 3
    got = []
    for _ in range(3):
        key = queue.get(2)
        assert key is not None
        got.append((key, time.monotonic() - started))
        queue.done(key)
    assert [key for key, _ in got] == [A, B, C]
    for (_, at), due in zip(got, [0.05, 0.10, 0.15], strict=True):
        assert at >= due * 0.95


def test_an_earlier_add_after_wins_and_a_waiting_get_wakes_for_it() -> None:
    queue = WorkQueue()
    queue.add_after(A, 5.0)
    got: list[Key | None] = []
    thread = threading.Thread(target=lambda: got.append(queue.get(3)))
    thread.start()
    time.sleep(0.05)  # the getter now sleeps until A's due time, 5 s away
    started = time.monotonic()
    queue.add_after(A, 0.05)
    thread.join(3)
    assert got == [A]
    assert time.monotonic() - started < 1.0
    assert queue.delayed() == 0


def test_shutdown_wakes_blocked_getters_and_refuses_new_keys() -> None:
    queue = WorkQueue()
    results: list[Key | None] = []
    threads = [threading.Thread(target=lambda: results.append(queue.get())) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    queue.shutdown()
    for thread in threads:
        thread.join(2)
    assert results == [None, None, None]
    queue.add(A)
    assert queue.get(0) is None and len(queue) == 0
