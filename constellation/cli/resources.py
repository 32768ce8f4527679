"""What the object verbs share: a client from the global options, manifests read from
`-f`, and objects rendered as YAML, JSON or ages."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from constellation.cli.context import CliContext

if TYPE_CHECKING:
    from constellation.apis.meta import Resource
    from constellation.client.client import Client


def open_client(ctx: typer.Context) -> Client:
    from constellation.client.client import Client

    context: CliContext = ctx.find_root().obj
    return Client(context.open_store())


def load_manifests(paths: list[str], recursive: bool) -> list[Resource]:
    """Every object in every file, or `ManifestErrors` listing every problem in all of them:
    one bad document means nothing is applied."""
    from constellation.apis.loader import ManifestError, ManifestErrors, load_objects
    from constellation.cli.sources import read_sources

    objects: list[Resource] = []
    problems: list[str] = []
    for source in read_sources(paths, recursive):
        try:
            objects.extend(load_objects(source.text, source.name))
        except ManifestError as error:  # ManifestErrors too: each lists its lines
            problems.extend(error.messages)
    problems.extend(_duplicates(objects))
    if problems:
        raise ManifestErrors(problems)
    return objects


def _duplicates(objects: list[Resource]) -> list[str]:
    seen: set[tuple[str, str | None, str]] = set()
    problems = []
    for obj in objects:
        if obj.key_parts() in seen:
            problems.append(f"{ref(obj)} appears more than once in the manifests")
        seen.add(obj.key_parts())
    return problems


def ref(obj: Resource) -> str:
    """`instance/web`, as kubectl names objects in its output."""
    return f"{obj.KIND.lower()}/{obj.metadata.name}"


def to_yaml(documents: list[dict[str, Any]]) -> str:
    """Block-style YAML in the fields' own order; several documents separated by `---`."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=4, offset=2)
    # Never fold long strings: ruamel's emitter can fold an escaped double-quoted string
    # without the trailing backslash, and the value read back gains a space.
    yaml.width = 2**30
    out = io.StringIO()
    yaml.dump_all([_quote_raw_breaks(document) for document in documents], out)
    return out.getvalue()


# YAML 1.1's extra line breaks (NEL, LS, PS). ruamel writes them raw in plain and single-quoted
# strings, then reads them as breaks and folds them: NEL comes back as a space. Only in
# double quotes are they escaped (\N, \L, \P) and read back as themselves.
_RAW_BREAKS = frozenset("\x85\u2028\u2029")


def _quote_raw_breaks(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with every string (key or value) that holds a `_RAW_BREAKS` character
    marked for double quotes."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    def quote(value: Any) -> Any:
        if isinstance(value, str):
            return value if _RAW_BREAKS.isdisjoint(value) else DoubleQuotedScalarString(value)
        if isinstance(value, dict):
            return {quote(key): quote(item) for key, item in value.items()}
        if isinstance(value, list):
            return [quote(item) for item in value]
        return value

    quoted: dict[str, Any] = quote(document)
    return quoted


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2)


def as_list(objects: list[Resource]) -> dict[str, Any]:
    """Several objects as one JSON document, as kubectl's `-o json` does."""
    from constellation.apis.meta import API_VERSION

    return {"apiVersion": API_VERSION, "kind": "List", "items": [o.to_dict() for o in objects]}


def age(since: datetime | None, now: datetime | None = None) -> str:
    """kubectl's compact ages: 45s, 3m20s, 2h, 5d."""
    if since is None:
        return "<unknown>"
    seconds = max(int(((now or datetime.now(UTC)) - since).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"
