"""One conversion run: sources in, manifests and a report out, or every input error at once.

Each YAML document is recognised on its own (a folder may mix Compose files, Kubernetes
manifests and Prometheus rules) unless `source_format` says which it must be.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from constellation.apis.loader import Document, ManifestError, ManifestErrors, parse_documents
from constellation.apis.meta import API_VERSION
from constellation.convert.compose import COMPOSE_KEYS, convert_compose
from constellation.convert.context import Context
from constellation.convert.kubernetes import convert_kubernetes
from constellation.convert.mapping import CONVERTED
from constellation.convert.prometheus import convert_prometheus_rule, convert_rules_file
from constellation.convert.report import Conversion, Note, ObjectReport

SourceFormat = Literal["auto", "compose", "kubernetes"]
FORMATS: tuple[SourceFormat, ...] = ("auto", "compose", "kubernetes")


def convert(
    sources: Iterable[tuple[str, str]],
    source_format: SourceFormat = "auto",
    environ: Mapping[str, str] | None = None,
) -> Conversion:
    """Convert (name, text) sources; ManifestErrors lists every input that cannot be read.
    `environ` is what Compose interpolation reads (the process environment by default)."""
    import os

    ctx = Context(environ=dict(os.environ) if environ is None else environ)
    problems: list[str] = []
    for name, text in sources:
        try:
            documents = parse_documents(text, name)
        except ManifestError as error:
            problems.extend(error.messages)
            continue
        for index, document in enumerate(documents):
            try:
                _convert_document(document, index, ctx, source_format)
            except ManifestError as error:
                problems.extend(error.messages)
    if problems:
        raise ManifestErrors(problems)
    return ctx.conversion


def _convert_document(
    document: Document, index: int, ctx: Context, source_format: SourceFormat
) -> None:
    data = document.data
    if source_format == "compose":
        convert_compose(document, index, ctx)
    elif data.get("apiVersion") == API_VERSION:
        _ours(document, index, ctx)
    elif data.get("kind") == "PrometheusRule":
        convert_prometheus_rule(document, index, ctx)
    elif "apiVersion" in data or "kind" in data:
        convert_kubernetes(document, index, ctx)
    elif "groups" in data:
        convert_rules_file(document, index, ctx)
    elif source_format == "auto" and COMPOSE_KEYS & set(data):
        convert_compose(document, index, ctx)
    else:
        raise ManifestError(_unrecognised(document, source_format))


def _unrecognised(document: Document, source_format: SourceFormat) -> str:
    where = f"{document.source}:{document.line}"
    if source_format == "kubernetes":
        return (
            f"{where}: kind: required field missing (a Kubernetes object needs apiVersion and kind)"
        )
    return (
        f"{where}: not a Compose file (no services), a Kubernetes object (no apiVersion and "
        "kind) or a Prometheus rules file (no groups)"
    )


def _ours(document: Document, index: int, ctx: Context) -> None:
    """Already a Constellation manifest: passed through, validated like the rest."""
    report = ObjectReport(
        document.source, index, document.line, (), f"{document.data.get('kind')} (Constellation)"
    )
    ctx.conversion.objects.append(report)
    metadata = document.data.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise ManifestError(
            f"{document.where(['metadata'])}: metadata.name: required field missing"
        )
    report.notes.append(
        Note((), CONVERTED, "-", "already a Constellation manifest: passed through")
    )
    ctx.emit(report, dict(document.data), f"{document.data.get('kind')}/{metadata['name']}")
