"""How objects are stored: one key per object, holding a JSON envelope.

The envelope keeps, beside the object, what `apply` needs and users never see: the last
manifest applied (no annotation and so no annotation size limit, unlike kubectl) and the apply
set that created the object (what prune may delete). Keeping them in the object's own key
makes every change to them atomic with the object. resourceVersion is not stored: it is the
key's mod_revision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from constellation.apis.meta import Resource
from constellation.store import Record

R = TypeVar("R", bound=Resource)

SERVER_METADATA: tuple[str, ...] = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
)


def object_key(kind: type[Resource], namespace: str | None, name: str) -> str:
    return f"{kind_prefix(kind, namespace)}{name}"


def kind_prefix(kind: type[Resource], namespace: str | None = None) -> str:
    """Keys of one kind (in one namespace, if given): `/registry/<plural>/[<namespace>/]`."""
    if kind.NAMESPACED and namespace is not None:
        return f"/registry/{kind.PLURAL}/{namespace}/"
    return f"/registry/{kind.PLURAL}/"


@dataclass
class Envelope:
    object: dict[str, Any]
    applied: dict[str, Any] | None = None
    created_by: str | None = None

    def encode(self) -> bytes:
        body: dict[str, Any] = {"object": self.object}
        if self.applied is not None:
            body["applied"] = self.applied
        if self.created_by is not None:
            body["createdBy"] = self.created_by
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, value: bytes) -> Envelope:
        body = json.loads(value)
        return cls(body["object"], body.get("applied"), body.get("createdBy"))


def stored_form(obj: Resource) -> dict[str, Any]:
    """The object as stored: everything but resourceVersion (which is the key's revision)."""
    document = obj.to_dict()
    document["metadata"].pop("resourceVersion", None)
    return document


def to_object(kind: type[R], document: dict[str, Any], revision: int) -> R:
    with_version = {**document, "metadata": {**document["metadata"]}}
    with_version["metadata"]["resourceVersion"] = str(revision)
    return kind.model_validate(with_version)


def decode_record(kind: type[R], record: Record) -> R:
    return to_object(kind, Envelope.decode(record.value).object, record.mod_revision)


def user_fields(document: dict[str, Any]) -> dict[str, Any]:
    """What a manifest may set: everything but status and server-set metadata."""
    manifest = {key: value for key, value in document.items() if key != "status"}
    metadata = {k: v for k, v in manifest.get("metadata", {}).items() if k not in SERVER_METADATA}
    manifest["metadata"] = metadata
    return manifest


def spec_part(document: dict[str, Any]) -> dict[str, Any]:
    """What generation counts: everything but metadata and status."""
    return {k: v for k, v in document.items() if k not in ("metadata", "status")}
