"""Go-style durations (`100ms`, `30s`, `1h30m`), as Kubernetes and Prometheus users write them.

Like quantities, models keep the user's spelling; `seconds()` converts when a number is needed.
A bare number is refused: `for: 5` could mean seconds or minutes, and guessing hides mistakes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)"
_DURATION = re.compile(rf"^(?:{_PART})+$")
_PARTS = re.compile(_PART)
PATTERN = r"^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+)$"


class DurationError(ValueError):
    """A duration that does not parse; the message shows how to write one."""


def seconds(value: str) -> float:
    """`1h30m` -> 5400.0. `0` alone is allowed, as in Go."""
    if not isinstance(value, str):
        raise DurationError(
            f"a duration must be a string with a unit such as 30s or 5m, not {_shown(value)}"
        )
    text = value.strip()
    if text == "0":
        return 0.0
    if text.startswith("-"):
        raise DurationError(f'invalid duration "{text}": durations cannot be negative')
    if not _DURATION.match(text):
        raise DurationError(
            f'invalid duration "{text}": use a number and a unit (ms, s, m, h), '
            "e.g. 100ms, 30s, 5m or 1h30m"
        )
    return sum(float(number) * _UNITS[unit] for number, unit in _PARTS.findall(text))


def _shown(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return type(value).__name__
    return f"the bare number {value} (write {value}s for seconds)"


def _duration(value: Any) -> str:
    seconds(value)
    assert isinstance(value, str)
    return value.strip()


def _positive(value: Any) -> str:
    if seconds(value) <= 0:
        raise DurationError(f'duration must be greater than zero, got "{value}"')
    return str(value).strip()


_SCHEMA = {"type": "string", "pattern": PATTERN}

Duration = Annotated[
    str,
    BeforeValidator(_duration),
    WithJsonSchema({**_SCHEMA, "description": "A duration such as 100ms, 30s, 5m or 1h30m."}),
]
PositiveDuration = Annotated[
    str,
    BeforeValidator(_positive),
    WithJsonSchema({**_SCHEMA, "description": "A duration above zero: 100ms, 30s, 5m, 1h30m."}),
]
