"""Label selectors in kubectl's syntax."""

from __future__ import annotations

import pytest

from constellation.client.selector import SelectorError, parse_selector

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("env in (prod, staging)", True),
        ("env in (staging)", False),
        ("env notin (staging)", True),
        ("missing notin (x)", True),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("!tier", False),
        ("app=web,tier=front,env in (prod)", True),
        ("app=web,tier=back", False),
    ],
)
def test_matching(text: str, matches: bool) -> None:
    assert parse_selector(text).matches(LABELS) is matches


@pytest.mark.parametrize("text", ["a in b", "=x", "a b", "a=b=c", "(", "a in (x", "!"])
def test_invalid_selectors_are_errors(text: str) -> None:
    with pytest.raises(SelectorError, match="invalid label selector"):
        parse_selector(text)


def test_one_spelling_per_meaning() -> None:
    assert parse_selector("b=2, a=1").text == parse_selector("a==1,b=2").text == "a=1,b=2"
    assert parse_selector("x in (b, a)").text == "x in (a,b)"
