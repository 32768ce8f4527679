"""`constellation convert`: Compose files and Kubernetes manifests -> Constellation manifests.

The manifests go to stdout (or `-o FILE`), each document headed by a comment naming its source;
the report goes to stderr, as text or JSON, so the two can be piped apart.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from constellation.cli.apply_cmd import FileOption
from constellation.cli.errors import CommandError

if TYPE_CHECKING:
    from constellation.convert.report import Conversion


class From(enum.StrEnum):
    auto = "auto"
    compose = "compose"
    kubernetes = "kubernetes"


class ReportFormat(enum.StrEnum):
    text = "text"
    json = "json"


def convert(
    filename: FileOption,
    recursive: Annotated[
        bool, typer.Option("-R", "--recursive", help="Read directories recursively.")
    ] = False,
    source_format: Annotated[
        From,
        typer.Option(
            "--from",
            help="What the inputs are: auto (each document recognised on its own), compose "
            "or kubernetes (Kubernetes objects and Prometheus rules).",
        ),
    ] = From.auto,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the manifests to this file, not stdout."),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Exit non-zero when any field was dropped."),
    ] = False,
    report: Annotated[
        ReportFormat, typer.Option("--report", help="The report on stderr: text or json.")
    ] = ReportFormat.text,
) -> None:
    """Convert Docker Compose files, Kubernetes manifests and Prometheus alerting rules."""
    from constellation.cli.sources import read_sources
    from constellation.convert.report import render_text
    from constellation.convert.run import convert as run_conversion

    sources = [(source.name, source.text) for source in read_sources(filename, recursive)]
    conversion = run_conversion(sources, source_format.value)
    text = manifests_text(conversion)
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"{output}: {error.strerror}") from None
    if report is ReportFormat.json:
        print(json.dumps(conversion.to_dict(), indent=2), file=sys.stderr)
    else:
        print(render_text(conversion), file=sys.stderr)
    if strict and conversion.dropped():
        raise CommandError("--strict: some fields were dropped (see the report)")


def manifests_text(conversion: Conversion) -> str:
    """Every manifest as one multi-document YAML text, each headed by where it came from."""
    from constellation.cli.resources import to_yaml

    parts = []
    for output in conversion.outputs:
        header = f"# from {output.source}:{output.line} ({output.origin})\n"
        parts.append("---\n" + header + to_yaml([output.data]))
    return "".join(parts)
