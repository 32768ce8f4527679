"""Kubernetes resource quantities: `250m` of CPU, `64Mi` of memory.

Users carry these spellings over from Kubernetes manifests, so the same grammar is accepted.
Models keep the user's spelling as a string (a manifest read back by `get -o yaml` says
what the user wrote, not `67108864`); the controllers convert with `cpu_millicores` and
`memory_bytes` when they need numbers.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

MIB = 1024 * 1024

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_QUANTITY = re.compile(rf"^(?P<number>{_NUMBER})(?P<suffix>[eE][-+]?[0-9]+|[A-Za-z]*)$")
# What people write when they mean a binary suffix: `MB`, `mb`, `Mib`, `M` (decimal in
# Kubernetes but rarely meant), `K`. Looked up in lower case.
_SUGGEST = {
    **{f"{p}{tail}": f"{p.upper()}i" for p in "mgtpe" for tail in ("b", "i", "ib")},
    **{f"k{tail}": "Ki" for tail in ("", "b", "i", "ib")},
    "b": "",
}


class QuantityError(ValueError):
    """A quantity that does not parse; the message says why and how to write it."""


def _as_text(value: Any, what: str) -> str:
    # bool is an int in Python: `memory: true` is a mistake, not 1 byte.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(
            f"{what} must be a quantity such as {_EXAMPLE[what]}, not {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise QuantityError(f'invalid quantity "{value}"')
    return value if isinstance(value, str) else _float_text(value)


def _float_text(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value)), "f")
    return text.removesuffix(".0") if text.endswith(".0") else text


_EXAMPLE = {"cpu": '"250m" or 2', "memory": '"64Mi" or "1Gi"', "quantity": '"500m" or "64Mi"'}


def parse_quantity(value: Any) -> Decimal:
    """The value of any Kubernetes quantity, in base units (cores, bytes, ...)."""
    text = _as_text(value, "quantity").strip()
    match = _QUANTITY.match(text)
    if match is None:
        raise QuantityError(_invalid(text))
    number, suffix = Decimal(match["number"]), match["suffix"]
    if suffix in _BINARY:
        return number * Decimal(1024 ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number * Decimal(1000 ** _DECIMAL[suffix])
    if suffix == "m":
        return number / 1000
    if suffix[:1] in ("e", "E") and suffix[1:].lstrip("+-").isdigit():
        exponent = int(suffix[1:])
        # Beyond exabytes nothing is meant: refuse before Decimal overflows.
        if abs(exponent) > 30:
            raise QuantityError(f'invalid quantity "{text}": exponent out of range')
        return number.scaleb(exponent)
    if suffix == "":
        return number
    raise QuantityError(_invalid(text))


def _invalid(text: str) -> str:
    message = f'invalid quantity "{text}"'
    if text.startswith("-"):
        return f"{message}: quantities cannot be negative"
    match = re.match(rf"^({_NUMBER})\s*([A-Za-z]+)$", text)
    if match and match[2].lower() in _SUGGEST:
        return f'{message} (did you mean "{match[1]}{_SUGGEST[match[2].lower()]}"?)'
    return (
        f"{message}: write a number with an optional suffix: m (milli), k M G T P E "
        "(powers of 1000) or Ki Mi Gi Ti Pi Ei (powers of 1024)"
    )


def cpu_millicores(value: Any) -> int:
    """CPU as millicores: `250m` -> 250, `0.5` -> 500, `2` -> 2000."""
    text = _as_text(value, "cpu").strip()
    if text.endswith(tuple(_BINARY)):
        raise QuantityError(f'invalid cpu quantity "{text}": cpu is counted in cores, e.g. 500m')
    millis = parse_quantity(text) * 1000
    if millis < 1:
        raise QuantityError(f'cpu must be at least 1m, got "{text}"')
    if millis != millis.to_integral_value():
        raise QuantityError(f'cpu "{text}" is finer than 1m (a thousandth of a core)')
    return int(millis)


def memory_bytes(value: Any) -> int:
    """Memory as bytes, rounded up: `64Mi` -> 67108864, `129e6` -> 129000000."""
    text = _as_text(value, "memory").strip()
    if text.endswith("m") and _QUANTITY.match(text):
        raise QuantityError(
            f'invalid quantity "{text}": "m" means thousandths, not mega; write '
            f'"{text[:-1]}Mi" or "{text[:-1]}M"'
        )
    amount = parse_quantity(text)
    return int(amount.to_integral_value(rounding=ROUND_CEILING))


def _cpu(value: Any) -> str:
    cpu_millicores(value)
    return _as_text(value, "cpu").strip()


def _memory(value: Any) -> str:
    if memory_bytes(value) < MIB:
        raise QuantityError(f'memory must be at least 1Mi, got "{_as_text(value, "memory")}"')
    return _as_text(value, "memory").strip()


def _positive_quantity(value: Any) -> str:
    if parse_quantity(value) <= 0:
        raise QuantityError(f'quantity must be greater than zero, got "{value}"')
    return _as_text(value, "quantity").strip()


def _schema(pattern: str, description: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": pattern},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": description,
        }
    )


_PATTERN = rf"^{_NUMBER}([eE][-+]?[0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
_CPU_PATTERN = rf"^{_NUMBER}([eE][-+]?[0-9]+|m|k|M|G|T|P|E)?$"

# Annotated string types: a YAML number (`cpu: 2`) is accepted and kept as its text (`"2"`).
CPUQuantity = Annotated[
    str,
    BeforeValidator(_cpu),
    _schema(_CPU_PATTERN, "CPU in cores: 2, 0.5 or 250m (millicores); at least 1m."),
]
MemoryQuantity = Annotated[
    str,
    BeforeValidator(_memory),
    _schema(_PATTERN, "Memory in bytes with an optional suffix: 64Mi, 1Gi, 500M; at least 1Mi."),
]
Quantity = Annotated[
    str,
    BeforeValidator(_positive_quantity),
    _schema(_PATTERN, "A positive Kubernetes quantity: 500m, 2, 64Mi, 1G."),
]
