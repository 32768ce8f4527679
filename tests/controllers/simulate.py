"""Stand-ins for what the agent (issue 5) will do, written as plain store data, and a
synchronous driver that reconciles until nothing changes.

Nodes are real objects with a real heartbeat lease; "running" a replica is writing the status
an agent would report. Nothing here fakes the store or the controllers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from constellation.apis.instance import ResourceList
from constellation.apis.meta import Condition
from constellation.apis.node import Node, heartbeat_key
from constellation.apis.replica import Replica
from constellation.client.client import Client
from constellation.controllers.base import Key, Reconciler
from constellation.store import Conflict


def make_node(
    client: Client,
    name: str,
    cpu: str = "4",
    memory: str = "8Gi",
    pids: int = 10_000,
    labels: dict[str, str] | None = None,
    lease_ttl: int = 60,
) -> Node:
    """Register a Ready node with a heartbeat lease, as an agent does."""
    lease = client.store.grant_lease(lease_ttl)
    client.store.create(heartbeat_key(name), name.encode(), lease=lease)
    node = Node.model_validate(
        {"metadata": {"name": name, "labels": labels or {}}, "spec": {"leaseId": lease}}
    )
    node = client.create(node)
    node.status.capacity = ResourceList(cpu=cpu, memory=memory, pids=pids)
    node.status.allocatable = node.status.capacity
    node.status.conditions = [ready_condition("True")]
    node.status.heartbeatTime = datetime.now(UTC)
    return client.update_status(node)


def ready_condition(status: str) -> Condition:
    return Condition(type="Ready", status=status, lastTransitionTime=datetime.now(UTC))  # type: ignore[arg-type]


def run_bound_replicas(client: Client, ready: bool = True) -> int:
    """Report every bound, not-yet-running replica as Running (and Ready), as the agent on
    its node would; returns how many changed."""
    changed = 0
    for replica in client.list(Replica)[0]:
        if replica.spec.nodeName is None or replica.metadata.deletionTimestamp:
            continue
        if replica.status.phase == "Running" and _is_ready(replica) == ready:
            continue
        replica.status.phase = "Running"
        replica.status.nodeName = replica.spec.nodeName
        replica.status.startedAt = replica.status.startedAt or datetime.now(UTC)
        replica.status.conditions = [ready_condition("True" if ready else "False")]
        try:
            client.update_status(replica)
            changed += 1
        except Conflict:
            continue  # a controller wrote it meanwhile: the next round sees it
    return changed


def _is_ready(replica: Replica) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in replica.status.conditions)


def converge(
    client: Client,
    reconcilers: Sequence[Reconciler],
    run_replicas: bool = True,
    max_rounds: int = 200,
) -> int:
    """Reconcile every key of every reconciler's kind, round after round, until a whole round
    changes nothing in the store; returns the rounds taken. Fails if it never settles."""
    for round_ in range(1, max_rounds + 1):
        before = client.store.current_revision()
        for reconciler in reconcilers:
            for obj in client.list(reconciler.KIND)[0]:
                reconciler.reconcile(Key.of(obj))
        if run_replicas:
            run_bound_replicas(client)
        if client.store.current_revision() == before:
            return round_
    raise AssertionError(f"no steady state after {max_rounds} rounds")
