"""What a conversion produced and what it could not carry over, field by field.

One `ObjectReport` per source object (a Compose service, a Kubernetes object, an alerting
rule) lists a `Note` for each field: converted, approximated (and how) or dropped (and why).
Notes sit at field paths relative to the object; a note covers everything below its path, so
`Recorder.finish` can check that every leaf of the input is accounted for, and reports any
leaf nobody looked at as dropped instead of letting it disappear.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from constellation.convert.mapping import (
    APPROXIMATED,
    CONVERTED,
    DROPPED,
    NOT_RECOGNISED,
    Status,
    lookup,
    rule,
)

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Note:
    path: Path | None  # relative to the object's root; None: about the object as a whole
    status: Status
    target: str
    detail: str


@dataclass
class Output:
    """One Constellation manifest document, and where it came from."""

    data: dict[str, Any]
    source: str
    line: int
    origin: str  # the source object, as the report names it: `services.web`, `Deployment/web`

    @property
    def ref(self) -> str:
        return f"{str(self.data['kind']).lower()}/{self.data['metadata']['name']}"


@dataclass
class ObjectReport:
    source: str
    document: int  # index of the YAML document in the source
    line: int
    root: Path  # where the object is in its document
    what: str  # `service web`, `Deployment frontend`, `alert HighErrorRate`
    outputs: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def result(self) -> str:
        """converted, approximated, partial (something dropped) or unsupported (no output)."""
        statuses = {note.status for note in self.notes}
        if not self.outputs:
            return "unsupported"
        if DROPPED in statuses:
            return "partial"
        return APPROXIMATED if APPROXIMATED in statuses else CONVERTED

    def dropped(self) -> bool:
        return any(note.status == DROPPED for note in self.notes)

    def covered(self, path: Path) -> bool:
        """Whether a note speaks for the field at `path` (relative), or for one above it."""
        return any(
            note.path is not None and path[: len(note.path)] == note.path for note in self.notes
        )

    def noted_below(self, path: Path) -> bool:
        """Whether any note is about a field inside the one at `path`."""
        return any(note.path is not None and note.path[: len(path)] == path for note in self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "line": self.line,
            "object": self.what,
            "result": self.result,
            "outputs": self.outputs,
            "fields": [
                {
                    "field": dotted(note.path),
                    "status": note.status,
                    "target": note.target,
                    "detail": note.detail,
                }
                for note in self.notes
            ],
        }


@dataclass
class Conversion:
    objects: list[ObjectReport] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)

    def dropped(self) -> bool:
        return any(obj.dropped() for obj in self.objects)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for obj in self.objects:
            counts[obj.result] = counts.get(obj.result, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": [obj.to_dict() for obj in self.objects],
            "summary": {"outputs": len(self.outputs), **self.counts()},
        }


class Recorder:
    """Notes for one object, worded from the mapping table of one section."""

    def __init__(self, report: ObjectReport, section: str) -> None:
        self.report = report
        self.section = section

    def note(
        self,
        path: Path,
        field_name: str,
        status: Status | None = None,
        detail: str | None = None,
        section: str | None = None,
    ) -> None:
        """Record the fate of the field at `path` as the table's rule for `field_name` says,
        or with the `status` and `detail` this value calls for."""
        found = rule(section or self.section, field_name)
        self.report.notes.append(
            Note(
                path, status or found.status, found.target, found.note if detail is None else detail
            )
        )

    def custom(self, path: Path | None, status: Status, detail: str, target: str = "-") -> None:
        """A note no table row describes (a value-specific problem, such as a bad name)."""
        self.report.notes.append(Note(path, status, target, detail))

    def sweep(self, data: Any, path: Path, prefix: str = "", section: str | None = None) -> None:
        """Note every key of the mapping `data` (at `path`) that has no note yet, from the
        table's rule for `prefix + key` or the nearest `*` rule; unknown keys are dropped."""
        if not isinstance(data, dict):
            return
        for key in data:
            here = (*path, key)
            if self.report.covered(here) or self.report.noted_below(here):
                continue
            found = lookup(section or self.section, prefix + key)
            if found is None:
                self.custom(here, DROPPED, NOT_RECOGNISED)
            else:
                self.report.notes.append(Note(here, found.status, found.target, found.note))

    def finish(self, data: Any) -> None:
        """Report every leaf of the object that no note covers as dropped (not recognised)."""
        for leaf in leaf_paths(data):
            if self.report.covered(leaf):
                continue
            # Name the outermost field nothing was said about, not each leaf under it.
            outer = next(
                (
                    leaf[:end]
                    for end in range(1, len(leaf))
                    if not self.report.noted_below(leaf[:end])
                ),
                leaf,
            )
            if not self.report.covered(outer):
                self.custom(outer, DROPPED, NOT_RECOGNISED)


def leaf_paths(data: Any, path: Path = ()) -> Iterator[Path]:
    """The path of every scalar, and of every empty mapping or list, in `data`."""
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from leaf_paths(value, (*path, key))
    elif isinstance(data, list) and data:
        for index, value in enumerate(data):
            yield from leaf_paths(value, (*path, index))
    else:
        yield path


def dotted(path: Path | None) -> str:
    if path is None:
        return "(object)"
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(whole object)"


def render_text(conversion: Conversion) -> str:
    """The report as people read it: a line per object, then a line per field."""
    lines = []
    for obj in conversion.objects:
        outputs = ", ".join(obj.outputs) or "nothing"
        lines.append(f"{obj.source}:{obj.line}: {obj.what} -> {outputs} [{obj.result}]")
        for note in obj.notes:
            target = f" -> {note.target}" if note.target != "-" else ""
            # A converted field's table note says how in general: the JSON report has it.
            shown = note.detail and note.status != CONVERTED
            detail = f": {note.detail}" if shown else ""
            lines.append(f"  {note.status:<12} {dotted(note.path)}{target}{detail}")
    summary = ", ".join(f"{count} {result}" for result, count in conversion.counts().items())
    lines.append(
        f"{len(conversion.objects)} objects ({summary or 'none'}); "
        f"{len(conversion.outputs)} manifests written"
    )
    return "\n".join(lines)
