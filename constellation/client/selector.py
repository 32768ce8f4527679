"""Label selectors, with kubectl's syntax: `app=web,tier!=db,env in (a,b),env notin (c),x,!y`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_TERM = re.compile(
    r"""\s*(?:
        (?P<not>!)\s*(?P<absent>[^\s,=!()]+)
      | (?P<key>[^\s,=!()]+)\s*(?:
            (?P<op>==|=|!=)\s*(?P<value>[^\s,=!()]*)
          | \s(?P<setop>in|notin)\s*\((?P<values>[^()]*)\)
        )?
    )\s*(?:,|$)""",
    re.VERBOSE,
)


class SelectorError(ValueError):
    """A selector that cannot be parsed."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        match self.op:
            case "exists":
                return present
            case "!exists":
                return not present
            case "=" | "in":
                return present and labels[self.key] in self.values
            case _:  # "!=" and "notin" also match objects without the label, as in Kubernetes
                return not present or labels[self.key] not in self.values


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()
    text: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)


def parse_selector(text: str) -> Selector:
    requirements: list[Requirement] = []
    position = 0
    while position < len(text):
        match = _TERM.match(text, position)
        if match is None or match.end() == position:
            raise SelectorError(f"invalid label selector {text!r} at {text[position:]!r}")
        requirements.append(_requirement(match))
        position = match.end()
    return Selector(tuple(requirements), _canonical(requirements))


def _requirement(match: re.Match[str]) -> Requirement:
    if match["absent"]:
        return Requirement(match["absent"], "!exists")
    key = match["key"]
    if match["op"]:
        op = "!=" if match["op"] == "!=" else "="
        return Requirement(key, op, frozenset({match["value"]}))
    if match["setop"]:
        values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
        return Requirement(key, match["setop"], values)
    return Requirement(key, "exists")


def _canonical(requirements: list[Requirement]) -> str:
    """One spelling per meaning, so `b=2, a=1` and `a=1,b=2` name the same apply set."""
    return ",".join(sorted(_spell(requirement) for requirement in requirements))


def _spell(requirement: Requirement) -> str:
    values = sorted(requirement.values)
    match requirement.op:
        case "exists":
            return requirement.key
        case "!exists":
            return f"!{requirement.key}"
        case "=" | "!=":
            return f"{requirement.key}{requirement.op}{values[0]}"
        case _:
            return f"{requirement.key} {requirement.op} ({','.join(values)})"
