"""A controller-manager process for the leader election tests.

`python -m tests.controllers.manager_child STORE_URL LEASE_TTL` runs a real
`ControllerManager` with one reconciler, `Stamp`, which writes the process's pid into every
Instance's annotations. It prints `LEADING <pid>` each time it starts a leadership term
(reconcilers are built afresh per term), so a test sees who leads both from the output and
from what is written to the store.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import ClassVar

from constellation.apis.instance import Instance
from constellation.apis.meta import Resource
from constellation.controllers.base import ControllerContext, Key, Mapper, Result
from constellation.controllers.manager import ControllerManager
from constellation.store import Conflict, open_store

STAMP = "test.constellation.dev/reconciled-by"


class Stamp:
    NAME: ClassVar[str] = "stamp"
    KIND: ClassVar[type[Resource]] = Instance

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        print(f"LEADING {os.getpid()}", flush=True)

    def watches(self) -> Mapping[type[Resource], Mapper]:
        return {}

    def reconcile(self, key: Key) -> Result:
        obj = self.ctx.lister(Instance).get(key.name, key.namespace)
        if obj is None or obj.metadata.annotations.get(STAMP) == str(os.getpid()):
            return Result()
        obj.metadata.annotations[STAMP] = str(os.getpid())
        try:
            self.ctx.client.update(obj)
        except Conflict:
            return Result(requeue_after=0.01)  # the cache is behind: read it again shortly
        return Result()


def main() -> None:
    url, ttl = sys.argv[1], int(sys.argv[2])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    store = open_store(url)
    try:
        ControllerManager(store, reconciler_classes=[Stamp], lease_ttl=ttl, workers=1).run()
    finally:
        store.close()
    print(f"STOPPED {os.getpid()}", flush=True)


if __name__ == "__main__":
    main()
