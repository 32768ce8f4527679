"""Where the shared third-party corpus is, and conversion of files the way the CLI reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from constellation.convert.report import Conversion
from constellation.convert.run import SourceFormat, convert

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
GOLDEN = Path(__file__).resolve().parent / "golden"
# A fixed environment: conversions must not depend on the shell's.
ENVIRON = {"HOME": "/root"}


def corpus_files(*folders: str) -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not at {CORPUS}")
    return sorted(path for folder in folders for path in (CORPUS / folder).glob("*.y*ml"))


def convert_file(path: Path, source_format: SourceFormat = "auto") -> Conversion:
    return convert([(str(path), path.read_text(encoding="utf-8"))], source_format, ENVIRON)


def convert_text(
    text: str, name: str = "app.yaml", source_format: SourceFormat = "auto"
) -> Conversion:
    return convert([(name, text)], source_format, ENVIRON)
