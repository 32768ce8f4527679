"""Timing process starts, shared by bench/runtime.py and tests/runtime/spawn_latency.py: a
replica's `spawn()` until its program has been exec'd, and a command started with posix_spawn
until it has exited; samples of several ways taken in turn (so load drifting over the run
hits each alike) and summarised as p50 and p99.

The caller of `time_spawn` must be a child subreaper (`linux.set_child_subreaper()`).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence

from constellation.runtime.spawn import Spawned, SpawnSpec, spawn

UNSHARE = ["unshare", "--pid", "--mount", "--uts", "--ipc", "--fork", "/bin/true"]


def time_spawn(
    spec: SpawnSpec,
    *,
    until_exit: bool = False,
    spawner: Callable[[SpawnSpec], Spawned] = spawn,
) -> float:
    """Seconds from calling `spawner` to its return (the program has been exec'd), or with
    `until_exit` to the end of the program, as the posix_spawn baselines are timed."""
    start = time.perf_counter()
    spawned = spawner(spec)
    elapsed = time.perf_counter() - start
    try:
        os.waitid(os.P_PIDFD, spawned.pidfd, os.WEXITED)
    finally:
        os.close(spawned.pidfd)
    return time.perf_counter() - start if until_exit else elapsed


def time_posix_spawn(argv: Sequence[str]) -> float:
    """Seconds from posix_spawn of `argv` (stdin from /dev/null) until it has exited; an exit
    status other than 0 is an error, since a failed start would look fast."""
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        start = time.perf_counter()
        stdin = [(os.POSIX_SPAWN_DUP2, null, 0)]
        pid = os.posix_spawnp(argv[0], list(argv), os.environ, file_actions=stdin)
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
    finally:
        os.close(null)
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)}: {describe(status)}")
    return elapsed


def describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def sample_in_turn(
    runs: Mapping[str, Callable[[], float]], count: int, warmup: int = 10
) -> dict[str, list[float]]:
    """`count` samples of each run (after `warmup` untimed rounds), one of each per round."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(count):
        for name, run in runs.items():
            samples[name].append(run())
    return samples


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least `fraction` of them at or
    below it."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary_ms(samples: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 3),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 3),
    }
