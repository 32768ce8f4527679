"""Spawn latency: constellation's spawn() of /bin/true with the default namespaces (from the
call until exec succeeded) against `unshare --pid --mount --uts --ipc --fork /bin/true` and a
bare /bin/true, each started with os.posix_spawn and waited for. Prints JSON.

    python tests/runtime/spawn_latency.py [--count 300]      (as root)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from constellation.runtime import linux
from constellation.runtime.spawn import SpawnSpec, spawn

UNSHARE = ["unshare", "--pid", "--mount", "--uts", "--ipc", "--fork", "/bin/true"]


def time_spawn(log_path: str) -> float:
    spec = SpawnSpec(argv=["/bin/true"], env={}, hostname="bench-0", log_path=log_path)
    start = time.perf_counter()
    spawned = spawn(spec)
    elapsed = time.perf_counter() - start
    os.waitid(os.P_PIDFD, spawned.pidfd, os.WEXITED)
    os.close(spawned.pidfd)
    return elapsed


def time_posix_spawn(argv: list[str]) -> float:
    start = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, {})
    os.waitpid(pid, 0)
    return time.perf_counter() - start


def measure(run: Callable[[], float], count: int) -> dict[str, float]:
    for _ in range(10):
        run()
    samples = sorted(run() for _ in range(count))
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    count = parser.parse_args().count
    linux.set_child_subreaper()
    with tempfile.TemporaryDirectory() as directory:
        log_path = os.path.join(directory, "bench.log")
        spawned = measure(lambda: time_spawn(log_path), count)
        unshare = measure(lambda: time_posix_spawn(UNSHARE), count)
        bare = measure(lambda: time_posix_spawn(["/bin/true"]), count)
    report = {
        "count": count,
        "spawn": spawned,
        "unshare": unshare,
        "posix_spawn": bare,
        "ratio_p50_spawn_to_unshare": round(spawned["p50_ms"] / unshare["p50_ms"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
