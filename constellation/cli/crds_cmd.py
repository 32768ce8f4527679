"""`constellation crds -o DIR`: write one CRD-style schema file per kind.

The committed `crds/` folder is this command's output; a test regenerates it and fails when
the models have changed without it. Output is deterministic (kinds sorted by file name, keys
in model order) so regenerating an unchanged model changes nothing.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated

import typer

HEADER = (
    "# Generated from constellation/apis by `constellation crds -o crds/`; do not edit.\n"
    "# A CustomResourceDefinition-style schema for editors and manifest validators.\n"
)


def render_crds() -> dict[str, str]:
    """File name -> YAML text for every kind, sorted by file name."""
    from ruamel.yaml import YAML

    from constellation.apis.crd import crd_document
    from constellation.apis.registry import ALL_KINDS

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.width = 4096  # never fold long descriptions or patterns: diffs stay line-per-field
    files: dict[str, str] = {}
    for kind in sorted(ALL_KINDS, key=lambda k: k.KIND.lower()):
        stream = io.StringIO()
        yaml.dump(crd_document(kind), stream)
        files[f"{kind.KIND.lower()}.yaml"] = HEADER + stream.getvalue()
    return files


def write_crds(output: Path) -> list[Path]:
    """Write the files into `output` (created if missing); returns their paths."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_crds().items():
        path = output / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def crds(
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory to write into.")],
) -> None:
    """Write a CRD-style JSON Schema file per kind, for editors and validators."""
    from constellation.cli import ui

    for path in write_crds(output):
        ui.line(f"wrote {path}")
