"""`apply`: make an object match a manifest without undoing what others did to it.

A three-way merge of the last manifest applied, the live object and the new manifest
(`merge.py`), retried on Conflict so that concurrent appliers never lose an update. Fields
that belong to someone else are taken out of both manifests before merging: status always,
and `spec.replicas` of an Instance while a ScalePolicy targets it.

Prune is safe by construction: it deletes only objects that an apply with the same selector
created (recorded in the object's envelope when it was created), never objects made by hand
or by another apply set, however alike their labels.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from constellation.apis.meta import Resource
from constellation.client.client import Client
from constellation.client.codec import (
    Envelope,
    kind_prefix,
    object_key,
    spec_part,
    stored_form,
    to_object,
    user_fields,
)
from constellation.client.merge import remove_path, three_way_merge
from constellation.client.selector import Selector
from constellation.store import AlreadyExists, Conflict, NotFound

R = TypeVar("R", bound=Resource)
MAX_ATTEMPTS = 20
REPLICAS = ("spec", "replicas")


class ApplyOutcome(enum.Enum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ApplyResult(Generic[R]):
    object: R
    outcome: ApplyOutcome
    live: R | None = None  # the object before apply (None when created)


class InvalidMerge(ValueError):
    """The merged object is not valid (e.g. a field someone else set clashes with the manifest)."""


def apply(
    client: Client,
    manifest: R,
    *,
    dry_run: bool = False,
    apply_set: Selector | None = None,
    created_by: str | None = None,
) -> ApplyResult[R]:
    """`created_by` names the creator recorded on an object this apply creates, when that
    is not an apply set (a gitops sync: `gitops/<name>`)."""
    kind = type(manifest)
    key = object_key(kind, manifest.metadata.namespace, manifest.metadata.name)
    new = user_fields(stored_form(manifest))
    for _ in range(MAX_ATTEMPTS):
        record = client.store.get(key)
        try:
            if record is None:
                creator = apply_set.text if apply_set else created_by
                return _create(client, manifest, new, dry_run, creator)
            return _patch(
                client, kind, key, Envelope.decode(record.value), new, record.mod_revision, dry_run
            )
        except (Conflict, AlreadyExists, NotFound):
            continue  # someone wrote in between: read again and merge again
    raise Conflict(
        f"{kind.KIND.lower()} {manifest.metadata.name}: gave up after "
        f"{MAX_ATTEMPTS} conflicting writes"
    )


def _create(
    client: Client, manifest: R, new: dict[str, Any], dry_run: bool, created_by: str | None
) -> ApplyResult[R]:
    if dry_run:
        return ApplyResult(manifest, ApplyOutcome.CREATED)
    return ApplyResult(
        client.create(manifest, applied=new, created_by=created_by), ApplyOutcome.CREATED
    )


def _patch(
    client: Client,
    kind: type[R],
    key: str,
    envelope: Envelope,
    new: dict[str, Any],
    revision: int,
    dry_run: bool,
) -> ApplyResult[R]:
    live = envelope.object
    last = envelope.applied or {}
    new_effective, last_effective = _without_owned(client, kind, live, new, last)
    merged = three_way_merge(last_effective, new_effective, live)
    if spec_part(merged) != spec_part(live):
        merged["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1
    result = _validated(kind, merged, revision)
    before = to_object(kind, live, revision)
    outcome = ApplyOutcome.UNCHANGED if merged == live else ApplyOutcome.CONFIGURED
    if dry_run or (merged == live and envelope.applied == new):
        return ApplyResult(result, outcome, before)
    record = client.store.update(key, Envelope(merged, new, envelope.created_by).encode(), revision)
    return ApplyResult(to_object(kind, merged, record.mod_revision), outcome, before)


def _validated(kind: type[R], merged: dict[str, Any], revision: int) -> R:
    try:
        return to_object(kind, merged, revision)
    except ValidationError as error:
        problem = error.errors()[0]
        path = ".".join(str(part) for part in problem["loc"])
        raise InvalidMerge(
            f"{kind.KIND.lower()} {merged['metadata']['name']}: merging the manifest into the "
            f"live object gives an invalid {path}: {problem['msg']}"
        ) from None


def _without_owned(
    client: Client,
    kind: type[Resource],
    live: dict[str, Any],
    new: dict[str, Any],
    last: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifests minus fields someone else owns, so the merge keeps the live values."""
    if not _scaled_by_policy(client, kind, live):
        return new, last
    new, last = copy.deepcopy(new), copy.deepcopy(last)  # `new` is also the record kept
    remove_path(new, REPLICAS)
    remove_path(last, REPLICAS)
    return new, last


def _scaled_by_policy(client: Client, kind: type[Resource], live: dict[str, Any]) -> bool:
    from constellation.apis.instance import Instance
    from constellation.apis.scalepolicy import ScalePolicy

    if kind is not Instance:
        return False
    namespace, name = live["metadata"].get("namespace"), live["metadata"]["name"]
    policies, _ = client.list(ScalePolicy, namespace)
    return any(
        policy.spec.targetRef.kind == Instance.KIND and policy.spec.targetRef.name == name
        for policy in policies
    )


@dataclass(frozen=True)
class Pruned:
    kind: type[Resource]
    namespace: str | None
    name: str


def prune(
    client: Client,
    kinds: list[type[Resource]],
    apply_set: Selector,
    keep: set[tuple[str, str | None, str]],
    *,
    dry_run: bool = False,
) -> list[Pruned]:
    """Delete objects this apply set created earlier that the manifests no longer list."""
    pruned: list[Pruned] = []
    for kind in kinds:
        records, _ = client.store.list(kind_prefix(kind))
        for record in records:
            envelope = Envelope.decode(record.value)
            obj = to_object(kind, envelope.object, record.mod_revision)
            if envelope.created_by != apply_set.text or obj.key_parts() in keep:
                continue
            if not apply_set.matches(obj.metadata.labels):
                continue
            if not dry_run:
                try:
                    client.delete(
                        kind,
                        obj.metadata.name,
                        obj.metadata.namespace,
                        resource_version=obj.metadata.resourceVersion,
                    )
                except (Conflict, NotFound):
                    continue  # changed or gone meanwhile: the next apply decides again
            pruned.append(Pruned(kind, obj.metadata.namespace, obj.metadata.name))
    return pruned
