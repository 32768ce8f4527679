"""Compose's variable interpolation (`${VAR:-default}`) and its `.env` / `env_file` format.

Compose substitutes variables in every value of the file before it reads it, from the shell's
environment and the project's `.env` file (the environment wins). So does `convert`: the
result is what `docker compose config` would show, and unset variables are reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$", re.DOTALL)


class InterpolationError(ValueError):
    """`${VAR:?message}` with VAR unset, or a `${` that never closes; `path` is the field's."""

    path: tuple[str | int, ...] = ()


@dataclass
class Interpolator:
    environ: Mapping[str, str]
    unset: list[tuple[tuple[str | int, ...], str]] = field(default_factory=list)

    def data(self, value: Any, path: tuple[str | int, ...] = ()) -> Any:
        """`value` with every string interpolated; unset variables are remembered by path."""
        if isinstance(value, str):
            try:
                return self.text(value, path) if "$" in value else value
            except InterpolationError as error:
                error.path = path
                raise
        if isinstance(value, dict):
            return {key: self.data(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.data(item, (*path, index)) for index, item in enumerate(value)]
        return value

    def text(self, text: str, path: tuple[str | int, ...] = ()) -> str:
        out: list[str] = []
        index = 0
        while index < len(text):
            char = text[index]
            if char != "$" or index + 1 == len(text):
                out.append(char)
                index += 1
            elif text[index + 1] == "$":
                out.append("$")
                index += 2
            elif text[index + 1] == "{":
                end = _closing(text, index + 2)
                out.append(self._braced(text[index + 2 : end], path))
                index = end + 1
            else:
                match = _NAME.match(text, index + 1)
                if match is None:
                    out.append(char)
                    index += 1
                    continue
                out.append(self._value(match[0], path))
                index = match.end()
        return "".join(out)

    def _braced(self, inner: str, path: tuple[str | int, ...]) -> str:
        match = _BRACED.match(inner)
        if match is None:
            raise InterpolationError(f'invalid interpolation "${{{inner}}}"')
        name, operator, argument = match[1], match[2], match[3] or ""
        value = self.environ.get(name)
        empty = value is None or (operator is not None and operator.startswith(":") and not value)
        if operator is None:
            return self._value(name, path)
        if operator.endswith("-"):
            return self.text(argument, path) if empty else str(value)
        if operator.endswith("?"):
            if empty:
                raise InterpolationError(f"{name}: {self.text(argument, path) or 'not set'}")
            return str(value)
        return "" if empty else self.text(argument, path)  # `+`: the argument when set

    def _value(self, name: str, path: tuple[str | int, ...]) -> str:
        value = self.environ.get(name)
        if value is None:
            self.unset.append((path, name))
            return ""
        return value


def _closing(text: str, start: int) -> int:
    """The index of the `}` closing a `${` whose content starts at `start` (nesting allowed)."""
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "{" and text[index - 1] == "$":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise InterpolationError(f'"${{" without a closing "}}" in "{text}"')


def parse_env_file(text: str) -> dict[str, str]:
    """`KEY=VALUE` lines (`export` and quotes allowed, `#` comments), as Compose reads them."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        values[key.strip()] = _unquote(value.strip())
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        return inner.replace("\\n", "\n").replace('\\"', '"') if value[0] == '"' else inner
    comment = value.find(" #")
    return value[:comment].rstrip() if comment >= 0 else value


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of an env file; OSError when it cannot be read."""
    return parse_env_file(path.read_text(encoding="utf-8"))
