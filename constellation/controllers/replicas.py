"""The replicas controller: an Instance with `replicas: N` gets exactly N Replica objects.

Users write Instances; the scheduler, the agents and Services work on Replicas. This loop
bridges the two, level-based: every pass reads the Instance and its Replicas and takes the
steps the update strategy allows towards "N replicas `<instance>-<ordinal>`, ordinals
0..N-1, all running the Instance's current template, all Ready".

Names are stable (`web-0`, `web-1`, ...), like a StatefulSet's, not random like a
ReplicaSet's. That makes creation idempotent (a second create of `web-3` is AlreadyExists, so
a controller killed mid-scale-up and restarted cannot duplicate anything) and gives replicas
names people can type. It also shapes the rolling update:

- A replica is replaced in place: delete `web-2` (old template), create `web-2` (new
  template, new uid, unbound, so the scheduler places it afresh).
- Surge uses ordinals above N-1: with `maxSurge: 1` the roll first creates `web-N` on the new
  template, so an old one can go without dropping below N ready; once every ordinal below N
  runs the new template, the surge ordinals are removed, highest first, as soon as the
  availability budget allows. Outside a roll the same ordinals are plain scale-down leftovers,
  so there is one rule for both: at most `maxSurge` replicas above N-1 at any time.

Deletes carry the resourceVersion the decision was made on: if the replica changed since (it
became Ready, or was replaced by someone else) the store refuses and the next pass decides
again, so a stale cache cannot delete the wrong incarnation of a name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal

from constellation.apis.instance import Instance, InstanceStatus, ReplicaTemplate, UpdateStrategy
from constellation.apis.meta import Condition, OwnerReference, Resource, dns_label
from constellation.apis.replica import Replica
from constellation.controllers.base import (
    ControllerContext,
    Key,
    Mapper,
    Result,
    TerminalError,
)
from constellation.controllers.batch import SlowStart
from constellation.controllers.indexes import BY_INSTANCE, indexed, instance_value
from constellation.store import AlreadyExists, Conflict, NotFound

# Why node lifecycle fails a replica when its node is gone: such a replica will never run
# again where it is, so it is replaced (same name, new uid, unbound). Other failures (a
# process that exited under restartPolicy Never) are the user's to see, not ours to hide.
REPLACEABLE_REASONS = frozenset({"Evicted", "NodeLost"})
OUR_CONDITIONS = ("Available", "Progressing", "ReplicaFailure")
ROLLING_REASONS = ("RollingUpdate", "Recreating")
MAX_LISTED = 10  # replicas named in one ReplacingFailed event


def template_hash(template: ReplicaTemplate) -> str:
    """Stable over equal templates. Defaults are left out so that a later version adding a
    field with a default does not roll every replica in the cluster on upgrade."""
    document = template.model_dump(mode="json", exclude_defaults=True)
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def replica_name(instance: str, ordinal: int) -> str:
    return f"{instance}-{ordinal}"


def _scaled(value: int | str, replicas: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    exact = int(value.rstrip("%")) * replicas / 100
    return math.ceil(exact) if round_up else math.floor(exact)


@dataclass(frozen=True)
class Budget:
    """What a pass may do: N, and how far below N ready / above N total a roll may go."""

    replicas: int
    max_unavailable: int
    max_surge: int
    recreate: bool = False

    @classmethod
    def of(cls, replicas: int, strategy: UpdateStrategy) -> Budget:
        """Percentages as Kubernetes resolves them: maxUnavailable rounds down, maxSurge up,
        and if both come out 0 one replica may be unavailable, or nothing could move."""
        unavailable = _scaled(strategy.maxUnavailable, replicas, round_up=False)
        surge = _scaled(strategy.maxSurge, replicas, round_up=True)
        if unavailable == 0 and surge == 0:
            unavailable = 1
        return cls(replicas, unavailable, surge, strategy.type == "Recreate")

    @property
    def min_ready(self) -> int:
        return max(0, self.replicas - self.max_unavailable)


@dataclass(frozen=True)
class Member:
    """One replica as the plan sees it."""

    replica: Replica
    ordinal: int
    current: bool  # runs the Instance's current template
    ready: bool
    terminating: bool
    failed: bool  # lost with its node: to be replaced

    @classmethod
    def of(cls, replica: Replica, current_hash: str) -> Member:
        status = replica.status
        terminating = replica.metadata.deletionTimestamp is not None
        return cls(
            replica=replica,
            ordinal=replica.spec.ordinal,
            current=replica.spec.templateHash == current_hash,
            ready=not terminating
            and status.phase not in ("Failed", "Succeeded")
            and is_ready(replica),
            terminating=terminating,
            failed=status.phase == "Failed" and status.reason in REPLACEABLE_REASONS,
        )


def is_ready(replica: Replica) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in replica.status.conditions)


Why = Literal["failed", "scale", "roll", "surge"]


@dataclass(frozen=True)
class Deletion:
    member: Member
    recreate: bool  # an ordinal below N: create it again, on the current template, once gone
    why: Why


@dataclass
class Plan:
    """The writes of one pass: deletions first (they free names and budget), then creations."""

    deletions: list[Deletion] = field(default_factory=list)
    creations: list[int] = field(default_factory=list)
    _deleted: set[int] = field(default_factory=set)  # ordinals: names are unique per Instance

    def delete(self, member: Member, recreate: bool, why: Why) -> None:
        self.deletions.append(Deletion(member, recreate, why))
        self._deleted.add(member.ordinal)

    def deleting(self, member: Member) -> bool:
        return member.ordinal in self._deleted


def plan(members: Sequence[Member], budget: Budget, blocked: Iterable[int] = ()) -> Plan:
    """The steps `budget` allows now. Pure: the reconciler's decisions in one testable place.
    `blocked` ordinals are names held by someone else's replica (a deleted Instance's, until
    garbage collection removes it)."""
    n = budget.replicas
    result = Plan()
    # Recreate: nothing new until every old replica is gone, replacements of failed ones too.
    holding = budget.recreate and any(not m.current for m in members if not m.failed)
    live = [m for m in members if not m.terminating]
    for m in live:
        if m.failed:
            result.delete(m, recreate=m.ordinal < n and not holding, why="failed")
    healthy = [m for m in live if not m.failed]
    ready = sum(m.ready for m in healthy)
    ready -= _trim_extras(result, healthy, budget)
    home = [m for m in healthy if m.ordinal < n]
    extras = [m for m in healthy if m.ordinal >= n and not result.deleting(m)]
    occupied = {m.ordinal for m in members} | set(blocked)
    if holding:
        for m in healthy:
            if not m.current:
                result.delete(m, recreate=False, why="roll")
        return result
    if not budget.recreate:
        _roll(result, home, extras, ready, budget, occupied)
    result.creations += [o for o in range(n) if o not in occupied]
    return result


def _trim_extras(result: Plan, healthy: Sequence[Member], budget: Budget) -> int:
    """Scale down: ordinals above N-1 beyond the surge allowance go, highest first, whatever
    their readiness (as Kubernetes scales down). Returns how many ready ones that removes."""
    allowed = 0 if budget.recreate else budget.max_surge
    extras = sorted((m for m in healthy if m.ordinal >= budget.replicas), key=lambda m: -m.ordinal)
    excess = extras[: max(0, len(extras) - allowed)]
    for m in excess:
        result.delete(m, recreate=False, why="scale")
    return sum(m.ready for m in excess)


def _roll(
    result: Plan,
    home: Sequence[Member],
    extras: Sequence[Member],
    ready: int,
    budget: Budget,
    occupied: set[int],
) -> None:
    """RollingUpdate: replace old replicas while ready stays >= N - maxUnavailable, surge
    above N-1 by at most maxSurge, drop the surge once the roll is through."""
    n = budget.replicas
    # Unready ones first (they cost no availability), surge ordinals before real ones.
    old = sorted(
        (m for m in [*home, *extras] if not m.current),
        key=lambda m: (m.ready, m.ordinal < n, -m.ordinal),
    )
    for m in old:
        if m.ready and ready - 1 < budget.min_ready:
            continue
        result.delete(m, recreate=m.ordinal < n, why="roll")
        ready -= m.ready
    extras = [m for m in extras if not result.deleting(m)]
    if any(not m.current for m in home):
        waiting = sum(1 for m in home if not m.current and not result.deleting(m))
        wanted = min(budget.max_surge, waiting) - len(extras)
        result.creations += _free_ordinals(occupied, n, wanted)
        return
    for m in sorted(extras, key=lambda m: -m.ordinal):
        if m.ready and ready - 1 < budget.min_ready:
            continue
        result.delete(m, recreate=False, why="surge")
        ready -= m.ready


def _free_ordinals(occupied: set[int], start: int, count: int) -> list[int]:
    chosen: list[int] = []
    ordinal = start
    while len(chosen) < count:
        if ordinal not in occupied:
            chosen.append(ordinal)
        ordinal += 1
    return chosen


# What became of a deletion: done; done but finalizers keep the object (and its name) a
# while; someone else's doing; refused because the replica changed since it was read.
DeleteResult = Literal["deleted", "held", "absent", "changed"]


@dataclass
class Outcome:
    """What the store holds after a pass's writes, as far as the pass learned."""

    replicas: dict[str, Replica]
    failed: list[Replica] = field(default_factory=list)
    rolled: list[str] = field(default_factory=list)

    def settle(self, name: str, result: DeleteResult, left: Replica | None) -> None:
        """Count a deletion's result: gone, or held by finalizers (its name stays taken)."""
        if result in ("deleted", "absent"):
            self.replicas.pop(name, None)
        elif left is not None:
            self.replicas[name] = left


class ReplicasReconciler:
    NAME: ClassVar[str] = "replicas"
    KIND: ClassVar[type[Resource]] = Instance
    # A pass reads every replica of the Instance, and each of a start's 1,000 replicas
    # changes three times (created, bound, Running): unbatched (see runner.py), passes ran
    # back to back and the controllers took 5.8-6.6 s of CPU for that start, 3.7-3.8 s
    # batched. 0.1 s is little to add to a roll's step or a failed replica's replacement.
    BATCH_SECONDS: ClassVar[float] = 0.1

    def __init__(self, ctx: ControllerContext) -> None:
        self._ctx = ctx
        self._batches = SlowStart()

    def watches(self) -> Mapping[type[Resource], Mapper]:
        return {Replica: owning_instance}

    def reconcile(self, key: Key) -> Result:
        instance = self._ctx.lister(Instance).get(key.name, key.namespace)
        if instance is None or instance.metadata.deletionTimestamp is not None:
            return Result()  # garbage collection deals with the replicas of a deleted Instance
        budget = Budget.of(instance.spec.replicas, instance.spec.updateStrategy)
        self._check_names(instance, budget)
        current_hash = template_hash(instance.spec.template())
        owned, blocked = self._replicas(instance)
        members = [Member.of(r, current_hash) for r in owned]
        outcome = self._execute(instance, owned, plan(members, budget, blocked), current_hash)
        after = [Member.of(r, current_hash) for r in outcome.replicas.values()]
        self._record_steps(instance, outcome, budget)
        self._report(instance, after, budget)
        return Result()

    # -- reading -------------------------------------------------------------------------

    def _replicas(self, instance: Instance) -> tuple[list[Replica], set[int]]:
        """This Instance's replicas (adopting orphans that carry its name), and the ordinals
        whose names another owner's replica still holds."""
        name, uid = instance.metadata.name, instance.metadata.uid
        owned: list[Replica] = []
        blocked: set[int] = set()
        value = instance_value(instance.metadata.namespace, name)
        for listed in indexed(self._ctx.lister(Replica), BY_INSTANCE, value):
            if listed.metadata.name != replica_name(name, listed.spec.ordinal):
                continue  # not a name this controller makes: not ours to count or delete
            owner = controller_uid(listed)
            if owner is not None and owner != uid:
                blocked.add(listed.spec.ordinal)
                continue
            replica = listed if owner else self._adopt(instance, listed)
            owned.append(self._sync_labels(instance, replica))
        return owned, blocked

    def _adopt(self, instance: Instance, replica: Replica) -> Replica:
        """An orphan (its Instance deleted with orphaning) is adopted by the new Instance of
        that name, as a ReplicaSet adopts matching pods; a roll then fixes its template."""
        replica = replica.model_copy(deep=True)
        replica.metadata.ownerReferences.append(owner_reference(instance))
        return self._ctx.client.update(replica)

    def _sync_labels(self, instance: Instance, replica: Replica) -> Replica:
        """Labels follow the Instance's without a restart: Services select on them, the
        process does not see them."""
        labels = instance.replica_labels()
        if replica.metadata.labels == labels or replica.metadata.deletionTimestamp:
            return replica
        replica = replica.model_copy(deep=True)
        replica.metadata.labels = labels
        try:
            return self._ctx.client.update(replica)
        except Conflict:
            return replica  # changed meanwhile: its watch event brings us back

    def _check_names(self, instance: Instance, budget: Budget) -> None:
        highest_ordinal = budget.replicas + budget.max_surge - 1
        if highest_ordinal < 0:
            return
        highest = replica_name(instance.metadata.name, highest_ordinal)
        try:
            dns_label(highest)
        except ValueError as error:
            message = f"cannot name replica {highest}: {error}; use a shorter Instance name"
            old = instance.status.conditions
            failure = condition(
                old,
                "ReplicaFailure",
                True,
                "InvalidName",
                message,
                instance.metadata.generation,
                self._ctx.clock(),
            )
            status = instance.status.model_copy(deep=True)
            status.conditions = [c for c in old if c.type != failure.type] + [failure]
            self._save_status(instance, status)
            raise TerminalError(message) from error

    # -- writing -------------------------------------------------------------------------

    def _execute(
        self, instance: Instance, owned: Sequence[Replica], steps: Plan, current_hash: str
    ) -> Outcome:
        """The plan's deletions, each followed by its re-creation, then its creations; many
        at a time (see batch.py)."""
        outcome = Outcome({r.metadata.name: r for r in owned})

        def replace(deletion: Deletion) -> tuple[DeleteResult, Replica | None, Replica | None]:
            result, left = self._delete(deletion.member.replica)
            again = result in ("deleted", "absent") and deletion.recreate
            made = self._create(instance, deletion.member.ordinal, current_hash) if again else None
            return result, left, made

        for deletion, (result, left, made) in zip(
            steps.deletions, self._batches.run(replace, steps.deletions), strict=True
        ):
            replica = deletion.member.replica
            outcome.settle(replica.metadata.name, result, left)
            if result in ("deleted", "held") and deletion.why == "failed":
                outcome.failed.append(replica)
            if result in ("deleted", "held") and deletion.why == "roll":
                outcome.rolled.append(replica.metadata.name)
            if made is not None:
                outcome.replicas[made.metadata.name] = made
        create = functools.partial(self._create, instance, current_hash=current_hash)
        for made in self._batches.run(create, steps.creations):
            if made is not None:
                outcome.replicas[made.metadata.name] = made
        return outcome

    def _delete(self, replica: Replica) -> tuple[DeleteResult, Replica | None]:
        """Delete `replica` if it is still what the plan saw; what became of it, and the
        replica if finalizers still hold it."""
        try:
            left = self._ctx.client.delete_unchanged(replica)
        except NotFound:
            return "absent", None
        except Conflict:
            return "changed", None  # since we looked (a stale cache): the next pass decides
        return ("deleted", None) if left is None else ("held", left)

    def _create(self, instance: Instance, ordinal: int, current_hash: str) -> Replica | None:
        replica = new_replica(instance, ordinal, current_hash)
        try:
            return self._ctx.client.create(replica)
        except AlreadyExists:
            # Made by an earlier pass that died before it could tell; count what is there.
            return self._ctx.lister(Replica).get(replica.metadata.name, replica.metadata.namespace)

    # -- reporting -----------------------------------------------------------------------

    def _record_steps(self, instance: Instance, outcome: Outcome, budget: Budget) -> None:
        recorder = self._ctx.recorder
        if outcome.failed:
            # One event per pass, not per replica: a lost node fails hundreds at once.
            failures = [_failure(replica) for replica in outcome.failed]
            shown = "; ".join(failures[:MAX_LISTED])
            more = f"; and {len(failures) - MAX_LISTED} more" if len(failures) > MAX_LISTED else ""
            message = f"replacing {len(failures)} failed: {shown}{more}"
            recorder.record(instance, "ReplacingFailed", message, "Warning")
        if outcome.rolled:
            strategy = "Recreate" if budget.recreate else "RollingUpdate"
            recorder.record(instance, strategy, f"replacing {', '.join(sorted(outcome.rolled))}")

    def _report(self, instance: Instance, after: Sequence[Member], budget: Budget) -> None:
        """Status, then the events that mark its transitions. Those wait for the status write
        so that a pass working from a stale Instance (the write conflicts) does not repeat them."""
        status = instance_status(instance, after, budget, self._ctx.clock())
        if not self._save_status(instance, status):
            return
        recorder = self._ctx.recorder
        if instance.metadata.generation != instance.status.observedGeneration:
            before, n = instance.status.replicas, budget.replicas
            if n > before:
                recorder.record(instance, "ScalingUp", f"scaled up to {n}")
            elif n < before:
                recorder.record(instance, "ScalingDown", f"scaled down to {n}")
        if _just_rolled_out(instance.status.conditions, status.conditions):
            updated = f"{status.updatedReplicas} replicas on template {_hash_of(after)}"
            recorder.record(instance, "RolloutComplete", f"rolled out: {updated}")

    def _save_status(self, instance: Instance, status: InstanceStatus) -> bool:
        """False when the Instance changed since it was read: the change's own watch event
        brings the key back, so retrying with backoff would only add noise."""
        if status == instance.status:
            return True  # written only when it changed: an idle controller writes nothing
        changed = instance.model_copy(deep=True)
        changed.status = status
        try:
            self._ctx.client.update_status(changed)
        except Conflict:
            return False
        return True


def _failure(replica: Replica) -> str:
    where = replica.spec.nodeName or "no node"
    return f"{replica.metadata.name} failed ({replica.status.reason}) on {where}"


def instance_status(
    instance: Instance, after: Sequence[Member], budget: Budget, now: datetime
) -> InstanceStatus:
    generation = instance.metadata.generation
    live = [m for m in after if not m.terminating]
    ready = sum(m.ready for m in live)
    old = instance.status.conditions
    available = ready >= budget.min_ready
    previous = next((c for c in old if c.type == "Progressing"), None)
    progressing, reason, message = progress(after, budget, previous)
    conditions = [c for c in old if c.type not in OUR_CONDITIONS]
    conditions += [
        condition(
            old,
            "Available",
            available,
            "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            f"{ready} of {budget.replicas} replicas ready (at least {budget.min_ready} needed)",
            generation,
            now,
        ),
        condition(old, "Progressing", progressing, reason, message, generation, now),
    ]
    return InstanceStatus(
        replicas=len(live),
        readyReplicas=ready,
        availableReplicas=ready,
        updatedReplicas=sum(m.current for m in live),
        observedGeneration=generation,
        conditions=conditions,
    )


def _hash_of(members: Sequence[Member]) -> str:
    return next((m.replica.spec.templateHash for m in members if m.current), "")


def progress(
    members: Sequence[Member], budget: Budget, previous: Condition | None = None
) -> tuple[bool, str, str]:
    """Progressing: (underway?, reason, message). Underway until exactly ordinals 0..N-1
    exist, all on the current template and Ready."""
    n = budget.replicas
    live = [m for m in members if not m.terminating]
    updated = sum(m.current for m in live)
    ready = sum(m.ready for m in live)
    counts = f"{updated} of {n} replicas updated, {ready} ready"
    if any(not m.current for m in members):
        return True, "Recreating" if budget.recreate else "RollingUpdate", counts
    if len(members) == len(live) == ready == n:
        return False, "Complete", counts
    # A roll is not over until its surge is gone and its last new replica is Ready.
    if previous is not None and previous.reason in ROLLING_REASONS:
        return True, previous.reason, counts
    if len(live) < n:
        return True, "ScalingUp", f"{len(live)} of {n} replicas created, {ready} ready"
    if len(members) > n:
        return True, "ScalingDown", f"{len(members)} replicas, scaling down to {n}"
    return True, "WaitingForReady", counts


def _just_rolled_out(old: Sequence[Condition], new: Sequence[Condition]) -> bool:
    before = next((c for c in old if c.type == "Progressing"), None)
    after = next(c for c in new if c.type == "Progressing")
    return before is not None and before.reason in ROLLING_REASONS and after.reason == "Complete"


def condition(
    old: Sequence[Condition],
    type_: str,
    true: bool,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> Condition:
    """A condition whose lastTransitionTime moves only when its status does."""
    status: Literal["True", "False"] = "True" if true else "False"
    previous = next((c for c in old if c.type == type_), None)
    since = previous.lastTransitionTime if previous and previous.status == status else now
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        lastTransitionTime=since,
        observedGeneration=generation,
    )


def owner_reference(instance: Instance) -> OwnerReference:
    assert instance.metadata.uid is not None, "an Instance read from the store has a uid"
    return OwnerReference(
        kind=Instance.KIND,
        name=instance.metadata.name,
        uid=instance.metadata.uid,
        controller=True,
        blockOwnerDeletion=True,
    )


def controller_uid(obj: Resource) -> str | None:
    return next((ref.uid for ref in obj.metadata.ownerReferences if ref.controller), None)


def new_replica(instance: Instance, ordinal: int, current_hash: str) -> Replica:
    return Replica.model_validate(
        {
            "metadata": {
                "name": replica_name(instance.metadata.name, ordinal),
                "namespace": instance.metadata.namespace,
                "labels": instance.replica_labels(),
                "ownerReferences": [owner_reference(instance).model_dump()],
            },
            "spec": {
                "instanceName": instance.metadata.name,
                "ordinal": ordinal,
                "template": instance.spec.template().model_dump(),
                "templateHash": current_hash,
            },
        }
    )


def owning_instance(obj: Resource) -> list[Key]:
    """A Replica's change wakes its Instance: the controller ownerReference names it, or,
    for an orphan, spec.instanceName (so a new Instance of that name adopts it)."""
    namespace = obj.metadata.namespace
    owners = [
        Key(namespace, ref.name)
        for ref in obj.metadata.ownerReferences
        if ref.controller and ref.kind == Instance.KIND
    ]
    if owners or not isinstance(obj, Replica):
        return owners
    return [Key(namespace, obj.spec.instanceName)]
