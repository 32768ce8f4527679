"""What one conversion run shares: the results so far, the names taken, and the environment.

`emit` is the one way a converter hands over a manifest: it validates the document with the
kind's own model (so whatever is written passes `constellation apply`), makes its name unique
in the run, and records it in the object's report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from constellation.apis.registry import kind_for
from constellation.convert.mapping import APPROXIMATED, DROPPED
from constellation.convert.report import Conversion, Note, ObjectReport, Output, dotted


@dataclass
class Context:
    environ: Mapping[str, str]
    conversion: Conversion = field(default_factory=Conversion)
    taken: set[tuple[str, str, str]] = field(default_factory=set)

    def emit(self, report: ObjectReport, data: dict[str, Any], origin: str) -> bool:
        """Validate and add one manifest; False (with a dropped note) if it is invalid."""
        metadata = data["metadata"]
        self._unique_name(report, data["kind"], metadata)
        try:
            kind_for(data["apiVersion"], data["kind"]).model_validate(data)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = dotted(tuple(p for p in first["loc"] if isinstance(p, str | int)))
            detail = f"the {data['kind']} would not be valid, so it is not written: {where}: "
            report.notes.append(Note((), DROPPED, "-", detail + first["msg"]))
            return False
        self.taken.add((data["kind"], metadata.get("namespace", "default"), metadata["name"]))
        output = Output(data, report.source, report.line, origin)
        self.conversion.outputs.append(output)
        report.outputs.append(output.ref)
        return True

    def _unique_name(self, report: ObjectReport, kind: str, metadata: dict[str, Any]) -> None:
        namespace, name = metadata.get("namespace", "default"), metadata["name"]
        if (kind, namespace, name) not in self.taken:
            return
        number = 2
        while (kind, namespace, f"{name[:60]}-{number}") in self.taken:
            number += 1
        metadata["name"] = f"{name[:60]}-{number}"
        detail = (
            f"{kind} {name} was already converted from another source: named {metadata['name']}"
        )
        report.notes.append(Note(None, APPROXIMATED, "metadata.name", detail))


def base_dir(source: str) -> Path | None:
    """The directory relative paths in a source are read from; None for standard input."""
    return None if source.startswith("<") else Path(source).resolve().parent
