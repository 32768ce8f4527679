"""Quantities and durations: the spellings Kubernetes users bring, and the mistakes they make."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from constellation.apis.duration import Duration, PositiveDuration, seconds
from constellation.apis.quantity import (
    CPUQuantity,
    MemoryQuantity,
    Quantity,
    cpu_millicores,
    memory_bytes,
    parse_quantity,
)

CPU: TypeAdapter[str] = TypeAdapter(CPUQuantity)
MEMORY: TypeAdapter[str] = TypeAdapter(MemoryQuantity)


@pytest.mark.parametrize(
    ("value", "millicores"),
    [("250m", 250), ("0.5", 500), ("2", 2000), (2, 2000), (0.25, 250), ("1.5", 1500),
     ("1m", 1), (" 100m ", 100), ("1k", 1_000_000)],
)  # fmt: skip
def test_cpu_millicores(value: Any, millicores: int) -> None:
    assert cpu_millicores(value) == millicores


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "cpu must be at least 1m"),
        ("0.0001", "cpu must be at least 1m"),
        ("1.5m", "finer than 1m"),
        ("-1", "quantities cannot be negative"),
        ("1.5.2", 'invalid quantity "1.5.2"'),
        ("1Gi", "cpu is counted in cores"),
        ("", 'invalid quantity ""'),
        (True, "not bool"),
        ([1], "not list"),
        (float("inf"), "invalid quantity"),
        (float("nan"), 'invalid quantity "nan"'),
    ],
)
def test_cpu_rejects(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        cpu_millicores(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [("64Mi", 64 * 2**20), ("1Gi", 2**30), ("128974848", 128974848), (128974848, 128974848),
     ("129e6", 129_000_000), ("1G", 10**9), ("500k", 500_000), ("1.5Gi", 3 * 2**29),
     ("1E", 10**18), ("1Ei", 2**60), ("0.5Ki", 512), ("1e-1", 1), (1e9, 10**9)],
)  # fmt: skip
def test_memory_bytes(value: Any, size: int) -> None:
    assert memory_bytes(value) == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("64MB", 'invalid quantity "64MB" (did you mean "64Mi"?)'),
        ("64mb", 'did you mean "64Mi"?'),
        ("1gb", 'did you mean "1Gi"?'),
        ("2K", 'did you mean "2Ki"?'),
        ("3 MiB", 'did you mean "3Mi"?'),
        ("10B", 'did you mean "10"?'),
        ("64m", '"m" means thousandths, not mega'),
        ("1.5.2", 'invalid quantity "1.5.2": write a number'),
        ("-5Mi", "quantities cannot be negative"),
        ("1e99", "exponent out of range"),
        ("Mi", 'invalid quantity "Mi"'),
        (None, "not NoneType"),
    ],
)
def test_memory_rejects(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        memory_bytes(value)
    assert message in str(caught.value)


def test_generic_quantity() -> None:
    assert parse_quantity("500m") == Decimal("0.5")
    assert TypeAdapter(Quantity).validate_python(50) == "50"
    with pytest.raises(ValidationError, match="greater than zero"):
        TypeAdapter(Quantity).validate_python("0")


def test_types_keep_the_users_spelling() -> None:
    assert CPU.validate_python(2) == "2"
    assert CPU.validate_python(0.5) == "0.5"
    assert CPU.validate_python("250m") == "250m"
    assert MEMORY.validate_python("64Mi") == "64Mi"
    assert MEMORY.validate_python(128974848) == "128974848"
    assert MEMORY.validate_python(1.5e9) == "1500000000"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("512Ki", "memory must be at least 1Mi"),
        ("1M", "memory must be at least 1Mi"),
        (0, "memory must be at least 1Mi"),
        ("64MB", 'did you mean "64Mi"?'),
    ],
)
def test_memory_type_rejects(value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MEMORY.validate_python(value)
    assert message in caught.value.errors()[0]["msg"]


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["m", "", "k"]))
def test_cpu_spellings_agree(number: int, suffix: str) -> None:
    scale = {"m": 1, "": 1000, "k": 1_000_000}[suffix]
    assert cpu_millicores(f"{number}{suffix}") == number * scale


@given(st.integers(min_value=1, max_value=10**4), st.sampled_from(["Ki", "Mi", "Gi", "Ti"]))
def test_binary_suffixes(number: int, suffix: str) -> None:
    power = ["Ki", "Mi", "Gi", "Ti"].index(suffix) + 1
    assert memory_bytes(f"{number}{suffix}") == number * 1024**power


@given(st.text(max_size=12) | st.integers() | st.floats() | st.none() | st.booleans())
def test_anything_is_a_value_or_a_value_error(value: Any) -> None:
    for parse in (cpu_millicores, memory_bytes, parse_quantity):
        with contextlib.suppress(ValueError):
            parse(value)


# Durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [("100ms", 0.1), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("1.5h", 5400), ("0", 0),
     ("0s", 0), ("250us", 0.00025), ("2h45m30s", 9930), ("10ns", 1e-8)],
)  # fmt: skip
def test_durations(text: str, expected: float) -> None:
    assert seconds(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5", 'invalid duration "5": use a number and a unit'),
        ("5 min", 'invalid duration "5 min"'),
        ("1d", 'invalid duration "1d"'),
        ("-5s", "durations cannot be negative"),
        ("", 'invalid duration ""'),
        (30, "not the bare number 30 (write 30s for seconds)"),
        (True, "not bool"),
    ],
)
def test_durations_reject(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        seconds(value)
    assert message in str(caught.value)


def test_duration_types() -> None:
    assert TypeAdapter(Duration).validate_python("1h30m") == "1h30m"
    assert TypeAdapter(Duration).validate_python("0s") == "0s"
    with pytest.raises(ValidationError, match="greater than zero"):
        TypeAdapter(PositiveDuration).validate_python("0s")


@given(
    st.lists(st.tuples(st.integers(0, 1000), st.sampled_from(["ms", "s", "m", "h"])), min_size=1)
)
def test_duration_parts_add_up(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{number}{unit}" for number, unit in parts)
    unit_seconds = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    assert seconds(text) == pytest.approx(sum(n * unit_seconds[u] for n, u in parts))
