"""Child processes for the SQLite store tests, run as `python -m tests.store.sqlite_processes`.

writer URL PREFIX: loops forever doing multi-row transactions (lease revocations) and updates,
    printing `ack <revision>` after each commit, until killed.
watcher URL PREFIX START COUNT: prints `ready`, then one line `<revision> <type> <key> <value>`
    per event until COUNT events were seen.
compactor URL: compacts to (current revision - 10) in a loop, printing `compacted <n>`.
"""

from __future__ import annotations

import sys

from constellation.store import Compacted, open_store

GROUP = 50


def writer(url: str, prefix: str) -> None:
    store = open_store(url)
    counter = store.create(f"{prefix}counter", b"0")
    group = 0
    while True:
        lease = store.grant_lease(3600)
        for i in range(GROUP):
            store.create(f"{prefix}g{group}/{i}", b"x", lease=lease)
        store.revoke(lease)  # one transaction deleting GROUP keys: killed inside it, or not
        counter = store.update(f"{prefix}counter", str(group).encode(), counter.mod_revision)
        print(f"ack {counter.mod_revision}", flush=True)
        group += 1


def watcher(url: str, prefix: str, start: int, count: int) -> None:
    store = open_store(url)
    with store.watch(prefix, start) as watch:
        print("ready", flush=True)
        for seen, event in enumerate(watch, 1):
            value = event.record.value.decode()
            print(event.revision, event.type.value, event.key, value, flush=True)
            if seen == count:
                break
    store.close()


def compactor(url: str) -> None:
    store = open_store(url)
    done = 0
    while True:
        try:
            store.compact(store.current_revision() - 10)
        except Compacted:
            continue
        done += 1
        print(f"compacted {done}", flush=True)


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    if role == "writer":
        writer(args[0], args[1])
    elif role == "watcher":
        watcher(args[0], args[1], int(args[2]), int(args[3]))
    elif role == "compactor":
        compactor(args[0])
