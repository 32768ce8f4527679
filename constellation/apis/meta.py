"""What every kind shares: Kubernetes object metadata, owner references and conditions.

Kubernetes conventions because users know them. Validation is strict: unknown fields are
errors, and YAML strings are never coerced into numbers or booleans (`replicas: "3"` is a
mistake worth reporting, not guessing at).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

API_VERSION: Final = "constellation.dev/v1"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")


class StrictModel(BaseModel):
    """Base of every model: unknown fields are errors and nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=False)


def dns_label(value: str) -> str:
    """A DNS-1123 label: it becomes a hostname, a cgroup and a replica name prefix."""
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"invalid name {value!r}: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            f"invalid name {value!r}: use at most 253 lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return value


def qualified_key(value: str) -> str:
    """A label or annotation key: `[prefix/]name`, prefix a DNS subdomain, name 63 characters."""
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ValueError(f"invalid key {value!r}: the prefix must be a DNS subdomain")
    if len(name) > 63 or not _QUALIFIED_NAME.match(name):
        raise ValueError(
            f"invalid key {value!r}: the name part must be at most 63 letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit"
        )
    return value


def label_value(value: str) -> str:
    if value and (len(value) > 63 or not _QUALIFIED_NAME.match(value)):
        raise ValueError(
            f"invalid label value {value!r}: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


DNSLabel = Annotated[str, AfterValidator(dns_label)]
DNSSubdomain = Annotated[str, AfterValidator(dns_subdomain)]
QualifiedKey = Annotated[str, AfterValidator(qualified_key)]
LabelValue = Annotated[str, AfterValidator(label_value)]
Labels = dict[QualifiedKey, LabelValue]
# Timestamps arrive from YAML and JSON as RFC 3339 strings: parsing them is not coercion.
Timestamp = Annotated[datetime, Field(strict=False)]


class OwnerReference(StrictModel):
    apiVersion: str = API_VERSION
    kind: str
    name: str
    uid: str
    controller: bool = False
    blockOwnerDeletion: bool = False


class ObjectMeta(StrictModel):
    """Users set name, namespace, labels and annotations; the store sets the rest."""

    name: DNSSubdomain
    namespace: DNSLabel | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: dict[QualifiedKey, str] = Field(default_factory=dict)
    uid: str | None = None
    resourceVersion: str | None = None
    generation: int | None = None
    creationTimestamp: Timestamp | None = None
    deletionTimestamp: Timestamp | None = None
    finalizers: list[QualifiedKey] = Field(default_factory=list)
    ownerReferences: list[OwnerReference] = Field(default_factory=list)


class Condition(StrictModel):
    """One observed aspect of an object, as Kubernetes reports them (Ready, Available, ...)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    lastTransitionTime: Timestamp | None = None
    observedGeneration: int | None = None


class Resource(StrictModel):
    """Base of every kind. Subclasses set the class variables and add `spec`/`status`."""

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()
    NAMESPACED: ClassVar[bool] = True
    # User kinds' names become hostnames and name prefixes: DNS labels. System kinds (Node,
    # Event) may use longer DNS subdomains.
    NAME_IS_LABEL: ClassVar[bool] = True

    apiVersion: Literal["constellation.dev/v1"] = API_VERSION
    kind: str  # narrowed to a Literal by each kind; declared here to keep it second in output
    metadata: ObjectMeta

    @model_validator(mode="after")
    def _check_scope(self) -> Resource:
        if self.NAME_IS_LABEL:
            dns_label(self.metadata.name)
        if self.NAMESPACED and self.metadata.namespace is None:
            self.metadata.namespace = "default"
        if not self.NAMESPACED and self.metadata.namespace is not None:
            raise ValueError(f"{self.KIND} is cluster-scoped: metadata.namespace must not be set")
        return self

    @classmethod
    def kind_name(cls) -> str:
        return cls.KIND

    def key_parts(self) -> tuple[str, str | None, str]:
        """(kind, namespace, name): what identifies the object."""
        return self.KIND, self.metadata.namespace, self.metadata.name

    def to_dict(self) -> dict[str, Any]:
        """The object as users see it in YAML/JSON: empty collections and unset fields omitted."""
        pruned = _prune(self.model_dump(mode="json", exclude_none=True))
        assert isinstance(pruned, dict)
        return pruned


def _prune(value: Any) -> Any:
    """Drop empty dicts and lists: in a manifest, absent and empty mean the same."""
    if isinstance(value, dict):
        items = ((key, _prune(item)) for key, item in value.items())
        return {key: item for key, item in items if item not in ({}, [])}
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


# Shared by several kinds' specs: small checks whose messages read well after a field path.


def absolute_path(value: str) -> str:
    """A host path the agent opens or mounts: relative paths would depend on its cwd."""
    if not value.startswith("/") or "\0" in value:
        raise ValueError(f'invalid path "{value}": use an absolute path starting with "/"')
    return value


AbsolutePath = Annotated[str, AfterValidator(absolute_path)]


def duplicates(values: Iterable[Hashable]) -> list[Hashable]:
    """The values that occur more than once, in first-seen order."""
    seen: set[Hashable] = set()
    repeated: list[Hashable] = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated


def require_unique(values: Iterable[Hashable], what: str) -> None:
    """Raise when `values` repeat, naming the field (`what`) and the repeated values."""
    repeated = duplicates(values)
    if repeated:
        shown = ", ".join(str(value) for value in repeated)
        raise ValueError(f"{what} must be unique: {shown} appears more than once")


def exactly_one(model: BaseModel, fields: Sequence[str]) -> str:
    """For `exactly one of` blocks (probe actions, notify targets): the one field that is set."""
    chosen = [field for field in fields if getattr(model, field) is not None]
    if len(chosen) != 1:
        options = ", ".join(fields[:-1]) + f" or {fields[-1]}"
        found = f" (found {', '.join(chosen)})" if chosen else ""
        raise ValueError(f"set exactly one of {options}{found}")
    return chosen[0]
