"""Spawn latency: constellation's spawn() of /bin/true with the default namespaces (from the
call until exec succeeded) against `unshare --pid --mount --uts --ipc --fork /bin/true` and a
bare /bin/true, each started with os.posix_spawn and waited for. Prints JSON.

    python tests/runtime/spawn_latency.py [--count 300]      (as root)

The timing itself is bench/spawn_timing.py's, shared with bench/runtime.py (which adds the
agent's imports, a real cgroup join, tini and runc).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from constellation.runtime import linux
from constellation.runtime.spawn import SpawnSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from spawn_timing import (
    UNSHARE,
    sample_in_turn,
    summary_ms,
    time_posix_spawn,
    time_spawn,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    count = parser.parse_args().count
    linux.set_child_subreaper()
    with tempfile.TemporaryDirectory() as directory:
        log_path = os.path.join(directory, "bench.log")
        spec = SpawnSpec(argv=["/bin/true"], env={}, hostname="bench-0", log_path=log_path)
        samples = sample_in_turn(
            {
                "spawn": lambda: time_spawn(spec),
                "unshare": lambda: time_posix_spawn(UNSHARE),
                "posix_spawn": lambda: time_posix_spawn(["/bin/true"]),
            },
            count,
        )
    spawned, unshare, bare = (summary_ms(samples[k]) for k in ("spawn", "unshare", "posix_spawn"))
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
