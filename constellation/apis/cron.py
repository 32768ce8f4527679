"""Five-field cron expressions (`0 9 * * MON-FRI`), for ScalePolicy schedules.

Validated when the manifest is applied, not when the schedule first fires at 3 a.m.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    (
        "month",
        1,
        12,
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
    ),
    ("day of week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def validate_cron(expression: str) -> str:
    """Raise a ValueError naming the bad field, or return the expression unchanged."""
    if expression.strip() in MACROS:
        return expression
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f'invalid cron "{expression}": use 5 fields (minute hour day-of-month month '
            f"day-of-week), e.g. '0 9 * * MON-FRI'; found {len(fields)}"
        )
    for text, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for item in text.split(","):
            problem = _item_problem(item, low, high, names)
            if problem:
                raise ValueError(f'invalid cron "{expression}": {name} "{text}": {problem}')
    return expression


def _item_problem(item: str, low: int, high: int, names: tuple[str, ...]) -> str:
    span, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) >= 1):
        return f'step "{step}" must be a positive number'
    if span == "*":
        return ""
    start, dash, end = span.partition("-")
    values: list[int] = []
    for part in (start, end) if dash else (start,):
        value = _value(part, low, names)
        if value is None or not low <= value <= high:
            named = f" or {names[0]}-{names[-1]}" if names else ""
            return f'"{part}" is not in {low}-{high}{named}'
        values.append(value)
    if len(values) == 2 and values[0] > values[1]:
        return f'range "{span}" runs backwards'
    return ""


def _value(part: str, low: int, names: tuple[str, ...]) -> int | None:
    if part.isdigit():
        return int(part)
    upper = part.upper()
    return names.index(upper) + low if upper in names else None


Cron = Annotated[
    str,
    AfterValidator(validate_cron),
    WithJsonSchema({"type": "string", "description": "A 5-field cron expression or @daily etc."}),
]
