"""Reading manifests from `-f FILE|DIR|-`: which files, in which order, and their text."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class SourceError(Exception):
    """A path that cannot be read as manifests; the message is one line for the user."""


@dataclass(frozen=True)
class Source:
    name: str  # as the user named it: errors say `app.yaml:14: ...`
    text: str


def read_sources(paths: list[str], recursive: bool = False) -> list[Source]:
    sources: list[Source] = []
    for path in paths:
        sources.extend(_read(path, recursive))
    return sources


def _read(path: str, recursive: bool) -> list[Source]:
    if path == "-":
        return [Source("<stdin>", sys.stdin.read())]
    location = Path(path)
    if location.is_dir():
        pattern = "**/*" if recursive else "*"
        files = sorted(p for p in location.glob(pattern) if p.suffix in MANIFEST_SUFFIXES)
        if not files:
            raise SourceError(f"{path}: no .yaml, .yml or .json files in this directory")
        return [_read_file(file) for file in files if file.is_file()]
    return [_read_file(location)]


def _read_file(path: Path) -> Source:
    try:
        return Source(str(path), path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file or directory") from None
    except UnicodeDecodeError:
        raise SourceError(f"{path}: not a UTF-8 text file") from None
    except OSError as error:
        raise SourceError(f"{path}: {error.strerror}") from None
