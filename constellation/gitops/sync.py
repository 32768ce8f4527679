"""One sync: make the store equal to a source's revision, as a whole, and keep it so.

A pass reads the revision, validates every document of it, and only then writes: if anything
is invalid, nothing from that revision is applied and the last good revision stays in force
(its objects are still held to it). Writes go through `apply`'s three-way merge, so fields
that controllers own (status, `spec.replicas` under a ScalePolicy) are never drift and never
fought over. Objects that are already as the source says cost no write: the live objects are
listed once per kind and compared in memory, so a pass over 1,000 unchanged objects is one
list per kind, not 1,000 reads. A dry run of every apply comes first, so a manifest that
cannot be merged into its live object also stops the whole revision before anything is
written. Prune deletes only what the inventory lists, matched by uid (see `inventory.py`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from constellation.apis.loader import ManifestError
from constellation.apis.meta import Resource
from constellation.apis.registry import lookup
from constellation.client.apply import ApplyOutcome, ApplyResult, InvalidMerge, apply
from constellation.client.client import Client, utc_now
from constellation.client.codec import Envelope, kind_prefix, object_key, stored_form, user_fields
from constellation.client.merge import three_way_merge
from constellation.controllers.events import StoreEventRecorder
from constellation.gitops import inventory as inventories
from constellation.gitops.inventory import Inventory, ManagedObject, ObjectKey
from constellation.gitops.manifests import ManifestCache, ref
from constellation.gitops.sources import Source, SourceError
from constellation.store import Conflict, NotFound, StoreError

DRIFT_REASON = "DriftCorrected"
# Paths that change on every write and say nothing about what drifted.
_BOOKKEEPING = ("metadata.resourceVersion", "metadata.generation")


class Refused(Exception):
    """A revision the sync will not apply (not a manifest error): one line for the user."""


@dataclass(frozen=True)
class Desired:
    """One object as the source wants it."""

    object: Resource
    manifest: dict[str, Any]  # what apply records as last applied
    digest: str
    key: str  # its store key

    @property
    def object_key(self) -> ObjectKey:
        return self.object.key_parts()


class Live:
    """A live object as listed; decoded only if looked at (most never are: see `_verified`)."""

    def __init__(self, value: bytes, mod_revision: int) -> None:
        self.value = value
        self.mod_revision = mod_revision

    @functools.cached_property
    def envelope(self) -> Envelope:
        return Envelope.decode(self.value)

    @property
    def uid(self) -> str:
        return str(self.envelope.object["metadata"].get("uid", ""))


@dataclass
class PassReport:
    """What one pass (or one correction) did; `errors` empty means it succeeded."""

    revision: str | None
    objects: int = 0
    changes: list[str] = field(default_factory=list)  # `instance/web configured`
    errors: list[str] = field(default_factory=list)
    drift: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def desired(obj: Resource) -> Desired:
    manifest = user_fields(stored_form(obj))
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    key = object_key(type(obj), obj.metadata.namespace, obj.metadata.name)
    return Desired(obj, manifest, hashlib.sha256(text).hexdigest()[:16], key)


class DesiredCache:
    """Desired states by object identity: the cached objects of unchanged files are the
    same objects pass after pass, and dumping a model is most of a pass's cost."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Resource, Desired]] = {}

    def state(self, objects: Iterable[Resource]) -> dict[str, Desired]:
        by_id = {}
        for obj in objects:
            cached = self._by_id.get(id(obj))
            # The object is kept beside its Desired, so its id cannot be reused meanwhile.
            by_id[id(obj)] = cached if cached is not None else (obj, desired(obj))
        self._by_id = by_id
        return {item.key: item for _, item in by_id.values()}


def in_sync(desired: Desired, live: Live | None) -> bool:
    """True if applying the manifest would change nothing: it was the last one applied and
    every field it sets has its value live (fields others added beside it do not count)."""
    if live is None or live.envelope.applied != desired.manifest:
        return False
    current = live.envelope.object
    return bool(three_way_merge(desired.manifest, desired.manifest, current) == current)


class Syncer:
    """Applies a source's revisions to the store; not thread-safe (one loop drives it)."""

    def __init__(
        self,
        client: Client,
        source: Source,
        name: str,
        *,
        prune: bool = True,
        allow_empty: bool = False,
    ) -> None:
        self.client = client
        self.source = source
        self.name = name
        self.prune = prune
        self.allow_empty = allow_empty
        self.recorder = StoreEventRecorder(client, f"gitops/{name}")
        # Recorded on every object this sync creates, in the object's own key: a selector
        # (what `apply --prune -l` records there) can never be spelled with spaces.
        self.creator = f"gitops sync {name}"
        self.inventory = inventories.load(client.store, name) or Inventory(name, "")
        self.inventory.source = source.description
        self._saved = self.inventory.encode() if self.inventory.mod_revision else b""
        self._cache = ManifestCache()
        self._desired_cache = DesiredCache()
        # key -> (mod_revision, digest) found in sync: unchanged since, it still is.
        self._verified: dict[str, tuple[int, str]] = {}
        self._desired: dict[str, Desired] = {}  # of the last good revision
        self.covered_revision = 0  # store changes up to here were seen by the last pass
        self.own_writes: set[int] = set()  # revisions of our own writes since then

    @property
    def managed_keys(self) -> frozenset[str]:
        return frozenset(self._desired)

    # -- a full pass ------------------------------------------------------------------------

    def sync(self) -> PassReport:
        """Read the source and apply its revision; if it cannot be read or is invalid, hold
        the objects to the last good revision instead and report why."""
        self.own_writes.clear()
        try:
            revision = self.source.read()
            objects = (item.object for item in self._cache.load(revision))
            desired = self._desired_cache.state(objects)
            self._check_not_empty(desired)
        except (SourceError, ManifestError, Refused) as error:
            messages = error.messages if isinstance(error, ManifestError) else [str(error)]
            return self._failed(messages)
        try:
            report = self._apply(revision.id, desired)
        except StoreError as error:
            return self._failed([f"store: {error}"])
        self._remember(report)
        return report

    def _failed(self, errors: list[str]) -> PassReport:
        """Keep enforcing the last good revision; record the error."""
        report = PassReport(self.inventory.revision, errors=errors)
        if self._desired:
            try:
                held = self._hold(self._desired, self.inventory.revision)
                report.changes, report.drift = held.changes, held.drift
                report.errors += held.errors
            except StoreError as error:
                report.errors.append(f"store: {error}")
        report.objects = len(self._desired)
        self._remember(report)
        return report

    def _check_not_empty(self, desired: dict[str, Desired]) -> None:
        managed = len(self.inventory.objects)
        if not desired and managed and not self.allow_empty:
            raise Refused(
                f"{self.source.description} yields no objects: nothing applied and nothing "
                f"pruned of the {managed} objects this sync manages (pass --allow-empty if "
                "the source is meant to be empty)"
            )

    def _apply(self, revision: str, desired: dict[str, Desired]) -> PassReport:
        old = self.inventory.by_key()
        live = self._live({d.object.KIND for d in desired.values()} | {k for k, _, _ in old})
        problems = self._claimed_elsewhere(desired, live)
        stale = [d for d in desired.values() if not self._in_sync(d, live.get(d.key))]
        problems += self._dry_run(stale)
        if problems:
            return self._failed(problems)
        report = PassReport(revision, objects=len(desired))
        managed = self._write(stale, desired, live, old, report)
        if self.prune and report.ok:
            managed += self._prune(old, desired, live, report)
        self._desired = desired
        self.inventory.objects = managed
        if report.ok and revision != self.inventory.revision:
            self.inventory.revision, self.inventory.applied_at = revision, _now()
        return report

    def _hold(self, desired: dict[str, Desired], revision: str | None) -> PassReport:
        """Restore drifted objects of the last good revision; prune nothing."""
        old = self.inventory.by_key()
        live = self._live({d.object.KIND for d in desired.values()})
        stale = [d for d in desired.values() if not self._in_sync(d, live.get(d.key))]
        report = PassReport(revision, objects=len(desired))
        kept = {obj.key: obj for obj in self._write(stale, desired, live, old, report)}
        self.inventory.objects = [kept.get(obj.key, obj) for obj in self.inventory.objects]
        return report

    def _live(self, kinds: set[str]) -> dict[str, Live]:
        """Every live object of these kinds, by key, from one list per kind."""
        live: dict[str, Live] = {}
        for kind in sorted(kinds):
            records, revision = self.client.store.list(kind_prefix(lookup(kind)))
            self.covered_revision = max(self.covered_revision, revision)
            for record in records:
                live[record.key] = Live(record.value, record.mod_revision)
        return live

    def _claimed_elsewhere(self, desired: dict[str, Desired], live: dict[str, Live]) -> list[str]:
        """Objects another sync manages (the same uid is in its inventory): two syncs of one
        object would undo each other's every write."""
        claims: dict[ObjectKey, dict[str, str]] = {}  # object -> uid -> the sync's name
        for other in inventories.load_all(self.client.store):
            if other.name != self.name:
                for obj in other.objects:
                    claims.setdefault(obj.key, {})[obj.uid] = other.name
        problems = []
        for item in desired.values():
            current = live.get(item.key)
            if current is None or item.object_key not in claims:
                continue  # most objects: no need to decode the live one
            owner = claims[item.object_key].get(current.uid)
            if owner:
                problems.append(f"{ref(item.object)} is managed by gitops sync {owner}")
        return problems

    def _dry_run(self, stale: list[Desired]) -> list[str]:
        problems = []
        for item in stale:
            try:
                apply(self.client, item.object, dry_run=True, created_by=self.creator)
            except (InvalidMerge, Conflict) as error:
                problems.append(str(error))
        return problems

    def _write(
        self,
        stale: list[Desired],
        desired: dict[str, Desired],
        live: dict[str, Live],
        old: dict[ObjectKey, ManagedObject],
        report: PassReport,
    ) -> list[ManagedObject]:
        """Apply the stale objects; the inventory entries of every desired object."""
        self._record_pending([item for item in stale if item.object_key not in old], old)
        uids = {key: found.uid for key, found in live.items()}
        for item in stale:
            try:
                result = apply(self.client, item.object, created_by=self.creator)
            except (InvalidMerge, StoreError) as error:
                report.errors.append(f"{ref(item.object)}: {error}")
                continue
            uids[item.key] = result.object.metadata.uid or ""
            self._note(item, result, old.get(item.object_key), report)
        managed = []
        for item in desired.values():
            if item.key in uids:
                managed.append(ManagedObject(*item.object_key, uids[item.key], item.digest))
            elif item.object_key in old:
                managed.append(old[item.object_key])  # failed to create: still ours to retry
        return managed

    def _note(
        self,
        item: Desired,
        result: ApplyResult[Resource],
        before: ManagedObject | None,
        report: PassReport,
    ) -> None:
        if result.object.metadata.resourceVersion:
            self.own_writes.add(int(result.object.metadata.resourceVersion))
        if result.outcome is ApplyOutcome.UNCHANGED:
            return
        drifted = before is not None and before.digest == item.digest
        if not drifted:
            report.changes.append(f"{ref(item.object)} {result.outcome.value}")
            return
        message = self._drift_message(result)
        report.changes.append(f"{ref(item.object)} drift corrected: {message}")
        report.drift += 1
        self.inventory.drift_corrected += 1
        self.recorder.record(result.object, DRIFT_REASON, message)

    def _drift_message(self, result: ApplyResult[Resource]) -> str:
        revision = (self.inventory.revision or "?").removeprefix("sha256:")[:12]
        if result.live is None:
            return f"re-created from {revision}: deleted outside gitops sync {self.name}"
        paths = changed_paths(result.live.to_dict(), result.object.to_dict())
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        outside = f"changed outside gitops sync {self.name}"
        return f"restored {shown or 'the manifest'} to {revision}: {outside}"

    def _prune(
        self,
        old: dict[ObjectKey, ManagedObject],
        desired: dict[str, Desired],
        live: dict[str, Live],
        report: PassReport,
    ) -> list[ManagedObject]:
        """Delete what left the source, if it is still the very object we applied. Returns
        the entries to keep (a deletion that lost a race is retried next pass)."""
        wanted = {item.object_key for item in desired.values()}
        kept = []
        for entry in old.values():
            if entry.key in wanted:
                continue
            kind = lookup(entry.kind)
            current = live.get(object_key(kind, entry.namespace, entry.name))
            if current is None or not self._ours(entry, current):
                continue  # gone, or replaced by an object that is not ours: leave it be
            try:
                self.client.delete(
                    kind, entry.name, entry.namespace, resource_version=str(current.mod_revision)
                )
            except Conflict:
                kept.append(entry)
                continue
            except NotFound:
                continue
            report.changes.append(f"{kind.KIND.lower()}/{_where(entry)}{entry.name} pruned")
        return kept

    def _in_sync(self, item: Desired, live: Live | None) -> bool:
        if live is not None and self._verified.get(item.key) == (live.mod_revision, item.digest):
            return True
        if not in_sync(item, live):
            return False
        assert live is not None
        self._verified[item.key] = (live.mod_revision, item.digest)
        return True

    def _ours(self, entry: ManagedObject, current: Live) -> bool:
        """The very object the sync applied, or one it created (the uid of an object it
        created just before it was killed may not have been recorded)."""
        return current.uid == entry.uid or current.envelope.created_by == self.creator

    def _record_pending(self, creating: list[Desired], old: dict[ObjectKey, ManagedObject]) -> None:
        """Before creating objects, list them (uid unknown yet): a sync killed after
        creating them still knows they are its own when it restarts."""
        if not creating:
            return
        pending = [ManagedObject(*item.object_key, "", item.digest) for item in creating]
        self.inventory.objects = [*old.values(), *pending]
        self._save()

    # -- one object, on a watch event ----------------------------------------------------------

    def correct(self, key: str) -> PassReport | None:
        """Restore one managed object if it drifted (after a change seen by a watch)."""
        item = self._desired.get(key)
        if item is None:
            return None
        record = self.client.store.get(key)
        current = None if record is None else Live(record.value, record.mod_revision)
        if self._in_sync(item, current):
            return None
        live = {} if current is None else {key: current}
        report = PassReport(self.inventory.revision, objects=len(self._desired))
        entry = self._write([item], {key: item}, live, self.inventory.by_key(), report)
        updated = {obj.key: obj for obj in entry}
        self.inventory.objects = [updated.get(obj.key, obj) for obj in self.inventory.objects]
        self._remember(report)
        return report

    # -- bookkeeping -------------------------------------------------------------------------

    def _remember(self, report: PassReport) -> None:
        """Store the inventory if anything in it changed (a pass that changed nothing
        writes nothing: a sync costs the store no writes while all is well)."""
        if report.errors != self.inventory.last_error:
            self.inventory.last_error = report.errors
            self.inventory.last_error_at = _now() if report.errors else None
        try:
            self._save()
        except StoreError as error:
            report.errors.append(f"store: cannot record the inventory: {error}")

    def _save(self) -> None:
        encoded = self.inventory.encode()
        if encoded != self._saved:
            inventories.save(self.client.store, self.inventory)
            self._saved = encoded


def changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """The dotted paths whose values differ (`spec.replicas`, `metadata.labels.tier`)."""
    if isinstance(before, dict) and isinstance(after, dict):
        paths = []
        for key in sorted(before.keys() | after.keys()):
            path = f"{prefix}.{key}" if prefix else key
            if path not in _BOOKKEEPING and not path.startswith("status"):
                paths += changed_paths(before.get(key), after.get(key), path)
        return paths
    return [] if before == after else [prefix]


def _where(entry: ManagedObject) -> str:
    return f"{entry.namespace}/" if entry.namespace not in (None, "default") else ""


def _now() -> str:
    return utc_now().isoformat()
