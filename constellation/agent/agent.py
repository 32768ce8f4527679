"""The agent: runs exactly the Replicas bound to its node and reports what became of them.

It is a controller like the others (an informer over Replicas, a work queue, `reconcile(key)`),
whose "actual state" is the local supervisor rather than the store. Its contract with the
control plane (see `controllers/nodelifecycle.py`):

    A replica runs here only while the Replica with that uid exists, is bound to this node and
    is not failed by someone else. On start, and whenever a key is reconciled, every local unit
    of that key that fails the test is stopped: deleted, rebound elsewhere, replaced by a new
    uid of the same name, or failed with NodeLost while this node was away.

Status writes are compare-and-swap on the object the informer last saw; a conflict requeues
the key and the next pass decides again from fresh data.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from constellation.agent.api import AgentAPI
from constellation.agent.node import NodeConfig, describe_node, node_address
from constellation.agent.units import key_of, replica_status, unit_group, unit_id, unit_spec
from constellation.apis.meta import Resource
from constellation.apis.node import Node, heartbeat_key
from constellation.apis.replica import Replica
from constellation.client.client import Client
from constellation.controllers.base import ControllerContext, Key, Mapper, Result, Settings
from constellation.controllers.base import precise_now as now
from constellation.controllers.events import StoreEventRecorder
from constellation.controllers.informer import Informer
from constellation.controllers.runner import Controller
from constellation.controllers.scope import on_node
from constellation.controllers.sharing import TemplateSharing
from constellation.runtime.cgroups import CgroupManager, detect
from constellation.runtime.linux import (
    limit_malloc_arenas,
    release_free_memory,
    set_child_subreaper,
)
from constellation.runtime.spawner import Spawner
from constellation.runtime.supervisor import Supervisor
from constellation.store import (
    AlreadyExists,
    Conflict,
    LeaseNotFound,
    NotFound,
    Store,
    StoreError,
)
from constellation.store.keeper import LeaseKeeper

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_TTL = 3
REGISTER_ATTEMPTS = 10
MALLOC_ARENAS = 2  # its threads mostly wait; each arena would keep its own freed memory
TRIM_SECONDS = 5.0  # how often freed heap goes back to the kernel (a call costs < 1 ms)
FINISHED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class AgentConfig:
    node: NodeConfig
    state_dir: Path
    cgroup_parent: str = "constellation"  # the CLI passes constellation/<node>
    init: str | None = None  # e.g. tini-static: `spawn.default_init()`
    heartbeat_ttl: int = DEFAULT_HEARTBEAT_TTL
    workers: int = 4  # spawns run outside the supervisor's lock: starts overlap
    listen: str = "127.0.0.1"  # the logs and stats endpoint
    port: int = 0


class AgentError(Exception):
    """The agent cannot run here (not root, no cgroups)."""


class ReplicaRunner:
    """The reconciler: one Replica key against the local supervisor."""

    NAME: ClassVar[str] = "agent"
    KIND: ClassVar[type[Resource]] = Replica

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def watches(self) -> Mapping[type[Resource], Mapper]:
        return {}

    def reconcile(self, key: Key) -> Result:
        agent = self.agent
        replica = agent.replicas.peek(key.name, key.namespace)
        wanted = unit_id(replica) if replica and agent.owns(replica) else None
        for unit in agent.units_of(key):
            if unit != wanted:
                agent.supervisor.stop(unit)
        if replica is None or wanted is None:
            return Result()
        status = agent.supervisor.status(wanted)
        if replica.status.phase in FINISHED and (status is None or status.phase not in FINISHED):
            if status is not None:  # failed by the control plane (NodeLost): stop, keep logs
                agent.supervisor.stop(wanted, forget=False)
            return Result()
        if status is None:
            status = agent.supervisor.ensure(unit_spec(replica, agent.config.init))
        reported = replica_status(replica.status, status, agent.name, agent.host_ip, now())
        if reported != replica.status:
            # A conflict means it changed since the informer saw it: that change requeues it.
            with contextlib.suppress(Conflict, NotFound):
                agent.client.update_status(replica.model_copy(update={"status": reported}))
        return Result()


class Agent:
    """Registers the node, keeps its heartbeat, and runs the reconciler until stopped."""

    def __init__(
        self, store: Store, config: AgentConfig, cgroups: CgroupManager | None = None
    ) -> None:
        if os.geteuid() != 0:
            raise AgentError("the agent must run as root: it makes namespaces and cgroups")
        limit_malloc_arenas(MALLOC_ARENAS)
        self.store = store
        self.name = config.node.name
        self.client = Client(store)
        self.host_ip = node_address(config.node)
        self.recorder = StoreEventRecorder(self.client, f"agent/{self.name}")
        # Only this node's replicas are cached; they are read in place (`peek`), and those
        # of one Instance share its template: about 5 of a Replica's 9 KB.
        self.replicas: Informer[Replica] = Informer(
            self.client, Replica, transform=TemplateSharing(), scope=on_node(self.name)
        )
        cgroups = cgroups or detect(config.cgroup_parent)
        self.spawner = Spawner()
        self.supervisor = Supervisor(
            cgroups,
            config.state_dir,
            on_change=self._unit_changed,
            on_event=self._unit_event,
            spawner=self.spawner.spawn,
        )
        self.api = AgentAPI(self.supervisor, self.current_unit, config.listen, config.port)
        node = replace(
            config.node, agent_endpoint=self.api.endpoint, cgroup_version=cgroups.version
        )
        self.config = config = replace(config, node=node)
        ctx = ControllerContext(self.client, {Replica: self.replicas}, self.recorder, Settings())
        self.controller = Controller(
            ReplicaRunner(self), ctx, {Replica: self.replicas}, workers=config.workers
        )
        self._events: queue.SimpleQueue[tuple[str, str, str, str] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.keeper: LeaseKeeper | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, sync_timeout: float = 30.0) -> Agent:
        set_child_subreaper()  # replicas' pid 1s become our children: pidfds, exit codes
        self.api.start()
        try:
            self.register()
            self.replicas.start()
            if not self.replicas.wait_for_sync(sync_timeout):
                raise StoreError(f"agent {self.name}: no replica list in {sync_timeout:g}s")
        except BaseException:
            self.stop()
            raise
        self.stop_orphans()
        self.controller.start()
        self._spawn_thread(self._record_events, "agent-events")
        self._spawn_thread(self._keep_heartbeat, "agent-heartbeat")
        return self

    def stop(self) -> None:
        """Stop supervising; replicas keep running for the next agent to adopt."""
        self._stop.set()
        self._events.put(None)
        self.controller.stop(timeout=5)
        self.replicas.stop()
        self.supervisor.close()
        self.spawner.close()
        self.api.close()
        if self.keeper is not None:
            self.keeper.stop()
        for thread in self._threads:
            thread.join(5)

    def _spawn_thread(self, target: object, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    # -- node registration and heartbeat --------------------------------------------------------

    def register(self) -> None:
        """Write the Node and its heartbeat. A restarted agent whose previous lease still
        lives takes that lease over, so the node never looks lost across a quick restart."""
        lease = self._reuse_or_grant_lease()
        self._put_heartbeat(lease)
        for _ in range(REGISTER_ATTEMPTS):
            try:
                self._write_node(lease)
                break
            except (Conflict, AlreadyExists):
                continue  # the node lifecycle controller wrote it meanwhile: read it again
        else:
            raise StoreError(f"node {self.name}: registration kept conflicting")
        self.keeper = LeaseKeeper(self.store, lease, self.config.heartbeat_ttl).start()
        log.info("node %s registered (lease %x)", self.name, lease)

    def _reuse_or_grant_lease(self) -> int:
        existing = self.client.find(Node, self.name, None)
        if existing is not None and existing.spec.leaseId is not None:
            with contextlib.suppress(LeaseNotFound):
                self.store.keepalive(existing.spec.leaseId)
                return existing.spec.leaseId
        return self.store.grant_lease(self.config.heartbeat_ttl)

    def _put_heartbeat(self, lease: int) -> None:
        key = heartbeat_key(self.name)
        try:
            self.store.create(key, b"", lease)
        except AlreadyExists:
            record = self.store.get(key)
            if record is not None and record.lease == lease:
                return
            # Held by a lease the Node no longer names: take it over.
            if record is not None:
                with contextlib.suppress(NotFound, Conflict):
                    self.store.delete(key, record.mod_revision)
            self.store.create(key, b"", lease)

    def _write_node(self, lease: int) -> None:
        existing = self.client.find(Node, self.name, None)
        node = describe_node(self.config.node, existing)
        node.spec.leaseId = lease
        if existing is None:
            self.client.create(node, created_by=f"agent/{self.name}")
            return
        updated = self.client.update(node)
        updated.status = node.status
        self.client.update_status(updated)

    def _keep_heartbeat(self) -> None:
        trimmed = time.monotonic()
        while not self._stop.is_set():
            keeper = self.keeper
            assert keeper is not None
            if not keeper.wait_lost(0.5):
                if time.monotonic() - trimmed > TRIM_SECONDS:
                    release_free_memory()
                    trimmed = time.monotonic()
                continue
            if self._stop.is_set():
                return
            log.warning("node %s lost its heartbeat lease: registering again", self.name)
            try:
                self.register()
            except StoreError as exc:
                log.warning("node %s could not register: %s", self.name, exc)
                self._stop.wait(1.0)

    # -- what runs here ---------------------------------------------------------------------------

    def owns(self, replica: Replica) -> bool:
        return replica.spec.nodeName == self.name and replica.metadata.deletionTimestamp is None

    def current_unit(self, key: Key) -> str | None:
        """The unit of the replica now called `key` here, else the last one of that name."""
        replica = self.replicas.peek(key.name, key.namespace)
        if replica is not None and self.owns(replica):
            return unit_id(replica)
        units = self.units_of(key)
        return units[-1] if units else None

    def units_of(self, key: Key) -> list[str]:
        return self.supervisor.unit_ids(group=unit_group(key))

    def stop_orphans(self) -> None:
        """Units a previous agent left whose replica is gone or went elsewhere."""
        wanted = {unit_id(r) for r in self.replicas.list(namespace=None) if self.owns(r)}
        for unit in self.supervisor.recorded_ids():
            if unit not in wanted:
                log.info("stopping %s: its replica is no longer bound here", unit)
                self.supervisor.stop(unit)

    # -- supervisor callbacks (its threads: only queue work here) ----------------------------------

    def _unit_changed(self, unit: str) -> None:
        self.controller.queue.add(key_of(unit))

    def _unit_event(self, unit: str, reason: str, message: str, type_: str) -> None:
        self._events.put((unit, reason, message, type_))

    def _record_events(self) -> None:
        while (item := self._events.get()) is not None:
            unit, reason, message, type_ = item
            key = key_of(unit)
            replica = self.replicas.peek(key.name, key.namespace)
            if replica is None or unit_id(replica) != unit:
                continue
            try:
                self.recorder.record(replica, reason, message, type_)
            except (StoreError, NotFound) as exc:
                log.info("event %s for %s lost: %s", reason, unit, exc)
