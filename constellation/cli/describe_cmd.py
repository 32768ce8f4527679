"""`constellation describe`: one object in full, for a person: spec, status, conditions and
what happened to it (its Events)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from constellation.cli import ui
from constellation.cli.get_cmd import NamespaceOption
from constellation.cli.resources import age, open_client, to_yaml

if TYPE_CHECKING:
    from constellation.apis.event import Event
    from constellation.apis.meta import Resource
    from constellation.client.client import Client


def describe(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="The kind, e.g. instance.")],
    name: Annotated[str, typer.Argument(help="The object's name.")],
    namespace: NamespaceOption = "default",
) -> None:
    """Show one object's spec, status, conditions and events."""
    from constellation.apis.registry import lookup

    model = lookup(kind)
    client = open_client(ctx)
    try:
        obj = client.get(model, name, namespace)
        ui.line(render(obj, events_of(client, obj)))
    finally:
        client.store.close()


def events_of(client: Client, obj: Resource) -> list[Event]:
    from constellation.apis.event import Event

    namespace = obj.metadata.namespace if obj.NAMESPACED else None
    events, _ = client.list(Event, namespace)
    mine = [
        event
        for event in events
        if event.involvedObject.kind == obj.KIND
        and event.involvedObject.name == obj.metadata.name
        and event.involvedObject.uid in (None, "", obj.metadata.uid)
    ]
    return sorted(mine, key=lambda e: e.lastTimestamp or e.firstTimestamp or e.metadata.name)


def render(obj: Resource, events: list[Event]) -> str:
    document = obj.to_dict()
    metadata = obj.metadata
    lines = [
        f"Name:              {metadata.name}",
        *([f"Namespace:         {metadata.namespace}"] if obj.NAMESPACED else []),
        f"Kind:              {obj.KIND}",
        f"Labels:            {_pairs(metadata.labels)}",
        f"Annotations:       {_pairs(metadata.annotations)}",
        f"Created:           {metadata.creationTimestamp} ({age(metadata.creationTimestamp)} ago)",
        f"Generation:        {metadata.generation}",
        f"Resource version:  {metadata.resourceVersion}",
    ]
    if metadata.deletionTimestamp:
        lines.append(f"Deleting since:    {metadata.deletionTimestamp}")
    if metadata.finalizers:
        lines.append(f"Finalizers:        {', '.join(metadata.finalizers)}")
    for owner in metadata.ownerReferences:
        lines.append(f"Owned by:          {owner.kind.lower()}/{owner.name}")
    body = {k: v for k, v in document.items() if k not in ("apiVersion", "kind", "metadata")}
    status = body.pop("status", {})
    conditions = status.pop("conditions", []) if isinstance(status, dict) else []
    for title, section in (("Spec", body.get("spec", body)), ("Status", status)):
        lines += [f"{title}:", _indented(section)]
    lines += ["Conditions:", _conditions(conditions), "Events:", _events(events)]
    return "\n".join(lines)


def _pairs(mapping: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in mapping.items()) or "<none>"


def _indented(section: Any) -> str:
    if not section:
        return "  <none>"
    text = to_yaml([section]).rstrip()
    return "\n".join(f"  {line}" for line in text.splitlines())


def _conditions(conditions: list[dict[str, Any]]) -> str:
    if not conditions:
        return "  <none>"
    rows = [[c["type"], c["status"], c.get("reason", ""), c.get("message", "")] for c in conditions]
    return ui.grid(["TYPE", "STATUS", "REASON", "MESSAGE"], rows, indent="  ")


def _events(events: list[Event]) -> str:
    if not events:
        return "  <none>"
    rows = [
        [
            e.type,
            e.reason,
            age(e.lastTimestamp or e.firstTimestamp),
            str(e.count),
            e.source.component or "",
            e.message,
        ]
        for e in events
    ]
    return ui.grid(["TYPE", "REASON", "AGE", "COUNT", "FROM", "MESSAGE"], rows, indent="  ")
