"""Manifest text in, validated objects out, with every error pointing at a file and a line.

kubectl reports `error validating data: ... unknown field "nmae"` and leaves users to find it.
Constellation says `app.yaml:3: metadata.nmae: unknown field (did you mean "name"?)`, and it
reports every problem of every document at once, so a file with one bad document applies none.

Why not ruamel's round-trip loader, which keeps every line: it takes 2.6 s to read a
1,000-object file here. This module composes YAML *nodes* with ruamel's C parser
(ruamel.yaml.clib; pure Python if absent), builds plain data from them itself and keeps the
nodes, so lines are found in one parse, only when an error needs one: 0.25 s for the same file,
validation included (1.8 s with the pure-Python parser). Building the data here
also decides what YAML means in a manifest, as Kubernetes does: timestamps stay strings,
non-string keys become their text, custom tags are errors.

Pure: no file I/O. Callers read the text and pass a display name (`app.yaml`, `<stdin>`).
Nothing but `ManifestError` / `ManifestErrors` leaves this module, whatever the text.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from constellation.apis.meta import API_VERSION, Resource
from constellation.apis.registry import ALL_KINDS, USER_KINDS, UnknownKind, kind_for

__all__ = ["Document", "ManifestError", "ManifestErrors", "load_objects", "parse_documents"]

FieldPath = tuple[str | int, ...]

# No manifest nests this deep; the limit keeps recursion here (and pydantic's) bounded.
MAX_DEPTH = 100
# Aliases can expand a small text into billions of values ("billion laughs"); no manifest
# document holds more than a few thousand.
MAX_VALUES_PER_DOCUMENT = 100_000
# ruamel's C composer recurses in C and crashes the process (SIGSEGV) at a nesting depth of
# 20,000 to 40,000: deeper-looking text is checked event by event first.
_C_SAFE_DEPTH = 2_000

# ruamel falls back to its pure-Python parser without ruamel.yaml.clib; tests set this to
# check that both parsers give the same answers.
_PURE_PYTHON = False

_YAML = "tag:yaml.org,2002:"
_STRING_TAGS = frozenset({_YAML + "str", _YAML + "timestamp"})
_MAPPING_TAG, _SEQUENCE_TAG, _MERGE_TAG = _YAML + "map", _YAML + "seq", _YAML + "merge"
_NULL_TAG = _YAML + "null"
_CONVERT = "convert it with: constellation convert -f {source}"


class ManifestError(ValueError):
    """One problem, as one line: `source:line: message`."""

    @property
    def messages(self) -> list[str]:
        return [str(self)]


class ManifestErrors(ManifestError):
    """Every problem found in the manifests, one line each, in file and line order."""

    def __init__(self, messages: Iterable[str]) -> None:
        self._messages = list(messages)
        super().__init__("\n".join(self._messages))

    @property
    def messages(self) -> list[str]:
        return list(self._messages)


@dataclass(frozen=True, eq=False)
class Document:
    """One YAML document of a manifest file: its plain data and where its fields are."""

    data: dict[str, Any]
    source: str
    line: int  # 1-based line of the document's first node
    _root: MappingNode = field(repr=False)

    def line_of(self, path: Sequence[str | int]) -> int:
        """The line of the field at `path` (its key's line; a list item's own line), or of
        the nearest enclosing field that exists: a missing field points at its parent."""
        line: int = self.line
        node: Node = self._root
        for part in path:
            found = _child(node, part)
            if found is None:
                break
            line, node = found
        return line

    def where(self, path: Sequence[str | int]) -> str:
        return f"{self.source}:{self.line_of(path)}"


def parse_documents(text: str, source: str) -> list[Document]:
    """The non-empty documents of a multi-document YAML text, or ManifestError(s)."""
    parsed = list(_parse(text, source))
    problems = [str(item) for item in parsed if isinstance(item, ManifestError)]
    if problems:
        raise ManifestErrors(problems)
    return [item for item in parsed if isinstance(item, Document)]


def load_objects(text: str, source: str) -> list[Resource]:
    """Every object in the text, validated; or ManifestErrors listing all problems of all
    documents in document order (so that nothing is applied when anything is wrong)."""
    objects: list[Resource] = []
    problems: list[str] = []
    for item in _parse(text, source):
        try:
            if isinstance(item, ManifestError):
                raise item
            objects.append(_load(item))
        except ManifestError as error:
            problems.extend(error.messages)
    if problems:
        raise ManifestErrors(problems)
    return objects


# ---------------------------------------------------------------------------------------------
# YAML text -> nodes -> plain data


class _FastResolver(VersionedResolver):
    """Manifests are YAML 1.2 (`yes`, `on` are strings), whatever a `%YAML` directive says, as
    ruamel's C parser reads them anyway. Fixing the version also saves ruamel working it out
    again for every scalar, which was a third of the load time."""

    _cached: Any = None

    @property
    def processing_version(self) -> Any:
        return (1, 2)

    @property
    def versioned_resolver(self) -> Any:
        if self._cached is None:
            self._cached = super().versioned_resolver
        return self._cached


def _new_yaml() -> YAML:
    # One per call: ruamel's loaders keep state and are not safe to share between threads.
    yaml = YAML(typ="safe", pure=_PURE_PYTHON)
    yaml.Resolver = _FastResolver
    return yaml


def _parse(text: str, source: str) -> Iterator[Document | ManifestError]:
    """Each document, or the problem that kept it from being read, in order. A syntax error
    ends the stream: the documents before it are still yielded."""
    try:
        _check_depth(text, source)
        for root in _new_yaml().compose_all(text):
            if not _is_empty(root):
                document = _document(root, source)
                yield document if isinstance(document, Document) else _with_hint(document, text)
    except ManifestError as error:
        yield error
    # Any exception from a third-party parser on arbitrary text is the text's fault, not
    # ours (ruamel also raises ValueError, UnicodeError, RecursionError...): report, not crash.
    except Exception as error:
        yield _with_hint(ManifestError(_syntax_message(error, text, source)), text)


def _is_empty(root: Node) -> bool:
    """`---` alone or only comments: nothing to apply."""
    return isinstance(root, ScalarNode) and root.value == "" and _tag(root) == _NULL_TAG


def _document(root: Node, source: str) -> Document | ManifestError:
    line = root.start_mark.line + 1
    try:
        data = _Builder(source).build(root)
    except ManifestError as error:
        return error
    if not isinstance(data, dict) or not isinstance(root, MappingNode):
        return ManifestError(
            f"{source}:{line}: a manifest document must be a mapping (apiVersion, kind, "
            f"metadata, spec), not {_describe_value(data)}"
        )
    return Document(data, source, line, root)


def _check_depth(text: str, source: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before the C composer can crash on it."""
    if _depth_bound(text) <= _C_SAFE_DEPTH:
        return
    depth = 0
    for event in _new_yaml().parse(text):
        if isinstance(event, MappingStartEvent | SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1
                raise ManifestError(f"{source}:{line}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, MappingEndEvent | SequenceEndEvent):
            depth -= 1


def _depth_bound(text: str) -> int:
    """An upper bound of any document's nesting depth, cheap to compute. Flow collections need
    a `[` or `{` each; nested block collections start further right, except a sequence that
    is a mapping's value, which may start at its key's column: at most two levels a column.
    No collection spans a `---` or `...` line, so documents are bounded one by one."""
    bound = 0
    for chunk in re.split(r"(?m)^(?:---|\.\.\.)(?=\s|$)", text):
        widest = max(map(len, chunk.split("\n")))
        bound = max(bound, chunk.count("[") + chunk.count("{") + 2 * widest + 2)
    return bound


def _syntax_message(error: Exception, text: str, source: str) -> str:
    mark = getattr(error, "problem_mark", None)
    if isinstance(error, MarkedYAMLError) and mark is not None:
        problem = error.problem or "invalid YAML"
        context = error.context
        if context and error.context_mark is not None:
            problem += f" ({context} on line {error.context_mark.line + 1})"
        tab = "\t" in _line_at(text, mark.line) or "'\\t'" in problem
        hint = "; indent with spaces: YAML does not allow tabs there" if tab else ""
        return f"{source}:{mark.line + 1}: {problem}{hint}"
    line = _reader_error_line(error, text)
    if isinstance(error, RecursionError):
        return f"{source}:{line}: nested deeper than {MAX_DEPTH} levels"
    if isinstance(error, UnicodeError):
        return f"{source}:{_bad_character_line(text)}: the text is not valid Unicode"
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    kind = "invalid YAML" if isinstance(error, YAMLError) else "cannot read the YAML"
    return f"{source}:{line}: {kind}: {reason}"


def _reader_error_line(error: Exception, text: str) -> int:
    """ruamel's ReaderError names a bad character and its position, in characters from the
    Python parser but in UTF-8 bytes from the C one: finding the character serves both."""
    character = getattr(error, "character", None)
    index = text.find(chr(character)) if isinstance(character, int) and character >= 0 else -1
    position = getattr(error, "position", None)
    if index < 0 and isinstance(position, int):
        index = position
    return text.count("\n", 0, max(index, 0)) + 1


def _line_at(text: str, index: Any) -> str:
    lines = text.splitlines()
    return lines[index] if isinstance(index, int) and 0 <= index < len(lines) else ""


def _with_hint(error: ManifestError, text: str) -> ManifestError:
    """Helm and Go templates are not YAML until rendered: say so rather than only where the
    YAML broke."""
    if "{{" in text and "}}" in text:
        return ManifestError(f"{error}; this looks like a template (Helm, Go): render it first")
    return error


def _bad_character_line(text: str) -> int:
    for number, line in enumerate(text.split("\n"), start=1):
        try:
            line.encode("utf-8")
        except UnicodeError:
            return number
    return 1


def _tag(node: Node) -> str:
    # ruamel decodes %-escapes in tags lazily and raises on malformed ones (an assert, for a
    # tag handle it was not told how to expand).
    try:
        return str(node.tag) if node.tag is not None else ""
    except (ValueError, AssertionError, TypeError, KeyError):
        return "!<malformed>"


class _Builder:
    """Plain Python data from a composed node tree: dicts, lists, str, int, float, bool, None."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.values = 0
        self.active: set[int] = set()  # collections being built: an alias to one is a cycle

    def build(self, node: Node, depth: int = 0) -> Any:
        self.values += 1
        if self.values > MAX_VALUES_PER_DOCUMENT:
            self._fail(node, f"more than {MAX_VALUES_PER_DOCUMENT} values (aliases expanding?)")
        if depth > MAX_DEPTH:
            self._fail(node, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if id(node) in self.active:
            self._fail(node, "an alias refers to a collection that contains it")
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, depth)
            if isinstance(node, SequenceNode):
                return self._sequence(node, depth)
            self._fail(node, f"unsupported YAML node {type(node).__name__}")
        finally:
            self.active.discard(id(node))

    def _fail(self, node: Node, message: str) -> NoReturn:
        raise ManifestError(f"{self.source}:{node.start_mark.line + 1}: {message}")

    def _scalar(self, node: ScalarNode) -> Any:
        tag, text = _tag(node), node.value
        if tag in _STRING_TAGS:
            return text
        converted = _SCALARS.get(tag)
        if converted is None:
            self._fail(node, f"unsupported YAML tag {_tag_name(tag)}")
        return converted(text)

    def _sequence(self, node: SequenceNode, depth: int) -> list[Any]:
        if _tag(node) != _SEQUENCE_TAG:
            self._fail(node, f"unsupported YAML tag {_tag_name(_tag(node))}")
        return [self.build(item, depth + 1) for item in node.value]

    def _mapping(self, node: MappingNode, depth: int) -> dict[str, Any]:
        if _tag(node) != _MAPPING_TAG:
            self._fail(node, f"unsupported YAML tag {_tag_name(_tag(node))}")
        result: dict[str, Any] = {}
        lines: dict[str, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if _is_merge(key_node):
                merges.append(value_node)
                continue
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in lines:
                self._fail(key_node, f'duplicate key "{key}" (first on line {lines[key]})')
            lines[key] = line
            result[key] = self.build(value_node, depth + 1)
        for merged in merges:
            self._merge(result, merged, depth)
        return result

    def _key(self, node: Node) -> str:
        """Keys are strings, as in JSON; like Kubernetes, a scalar key `80` means "80"."""
        if not isinstance(node, ScalarNode):
            kind = "mapping" if isinstance(node, MappingNode) else "list"
            self._fail(node, f"a mapping key must be text, not a {kind}")
        tag = _tag(node)
        if tag == _NULL_TAG:
            self._fail(node, "a mapping key is missing (empty or null key)")
        if tag not in _STRING_TAGS and tag not in _SCALARS:
            self._fail(node, f"unsupported YAML tag {_tag_name(tag)}")
        return str(node.value)

    def _merge(self, result: dict[str, Any], node: Node, depth: int) -> None:
        """`<<: *defaults`: the merged mappings' keys, unless set explicitly (YAML 1.1 merge,
        which Compose files use)."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for merged in sources:
            if not isinstance(merged, MappingNode):
                self._fail(merged, "<< must merge a mapping or a list of mappings")
            for key, value in self._mapping(merged, depth + 1).items():
                result.setdefault(key, value)


def _is_merge(key: Node) -> bool:
    # Checked on the text first: reading a node's tag costs more than building its value.
    return isinstance(key, ScalarNode) and key.value == "<<" and _tag(key) == _MERGE_TAG


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


def _to_int(text: str) -> int | str:
    """YAML 1.2 integers as ruamel resolves them (`0x1F`, `0o17`, `1_000`); text that only
    looks like one (`_`, 5,000 digits) stays text."""
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    bases = {"0b": 2, "0o": 8, "0x": 16}
    base = bases.get(digits[:2], 10)
    try:
        return sign * int(digits[2:] if base != 10 else digits, base)
    except ValueError:
        return text


def _to_float(text: str) -> float | str:
    lowered = text.replace("_", "").lower()
    special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
    if lowered in special:
        return special[lowered]
    try:
        return float(lowered)
    except ValueError:
        return text


def _to_bool(text: str) -> bool | str:
    return {"true": True, "false": False}.get(text.lower(), text)


_SCALARS = {
    _NULL_TAG: lambda text: None,
    _YAML + "bool": _to_bool,
    _YAML + "int": _to_int,
    _YAML + "float": _to_float,
}


def _child(node: Node, part: str | int) -> tuple[int, Node] | None:
    """The line and node of one step of a field path, following `<<` merges."""
    if isinstance(node, SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            item = node.value[part]
            return item.start_mark.line + 1, item
        return None
    if not isinstance(node, MappingNode):
        return None
    merges = []
    for key_node, value_node in node.value:
        if _is_merge(key_node):
            merges.append(value_node)
        elif isinstance(key_node, ScalarNode) and key_node.value == part:
            return key_node.start_mark.line + 1, value_node
    for merged in merges:
        for source in merged.value if isinstance(merged, SequenceNode) else [merged]:
            found = _child(source, part)
            if found is not None:
                return found
    return None


# ---------------------------------------------------------------------------------------------
# plain data -> Resource


def _load(document: Document) -> Resource:
    model = _model_for(document)
    try:
        return model.model_validate(document.data)
    except ValidationError as error:
        raise ManifestErrors(_validation_messages(document, model, error)) from None


def _model_for(document: Document) -> type[Resource]:
    data = document.data
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if api_version == API_VERSION:
        try:
            return kind_for(api_version, kind)
        except UnknownKind:
            raise ManifestErrors([_unknown_kind(document, kind)]) from None
    raise ManifestErrors([_not_ours(document, api_version, kind)])


def _kind_names(kinds: Iterable[type[Resource]] = ALL_KINDS) -> list[str]:
    return [kind.KIND for kind in kinds]


def _unknown_kind(document: Document, kind: Any) -> str:
    valid = ", ".join(_kind_names())
    if kind is None:
        return f"{document.where(['kind'])}: kind: required field missing (one of {valid})"
    close = difflib.get_close_matches(str(kind), _kind_names(), n=1, cutoff=0.6)
    guess = f' (did you mean "{close[0]}"?)' if close else ""
    return (
        f"{document.where(['kind'])}: kind: unknown kind {_quote(kind)}{guess}; "
        f"Constellation kinds are {valid}"
    )


def _not_ours(document: Document, api_version: Any, kind: Any) -> str:
    """Other systems' files are the commonest mistake: say what it is and how to convert it."""
    where, source = f"{document.source}:{document.line}", document.source
    convert = _CONVERT.format(source=source)
    if api_version is None and kind is None:
        return f"{where}: {_what_is_it(document.data, convert)}"
    if api_version is None:
        if kind in _kind_names():
            return f'{where}: apiVersion: required field missing (use "{API_VERSION}")'
        return (
            f"{where}: {_quote(kind)} without an apiVersion is not a Constellation kind "
            f"({', '.join(_kind_names(USER_KINDS))}, apiVersion {API_VERSION})"
        )
    if _looks_like_ours(api_version):
        return (
            f"{document.where(['apiVersion'])}: apiVersion: unsupported version "
            f'{_quote(api_version)} (use "{API_VERSION}")'
        )
    what = f"{api_version} {kind}" if kind is not None else f"{api_version} without a kind"
    return f"{where}: {what} is not a Constellation kind; {convert}"


def _what_is_it(data: dict[str, Any], convert: str) -> str:
    if "services" in data:
        return f"this looks like a Docker Compose file, not a Constellation manifest; {convert}"
    if "groups" in data:
        return f"this looks like a Prometheus rules file, not a Constellation manifest; {convert}"
    if "$schema" in data or ("properties" in data and "type" in data):
        return (
            "this looks like a JSON Schema, not a Constellation manifest; `constellation "
            "convert` translates Compose files and Kubernetes manifests, not schemas"
        )
    return (
        f"not a Constellation manifest: apiVersion and kind are missing (use apiVersion: "
        f"{API_VERSION} and a kind: {', '.join(_kind_names(USER_KINDS))})"
    )


def _looks_like_ours(api_version: Any) -> bool:
    text = str(api_version).lower()
    return text.startswith("constellation") or (
        difflib.SequenceMatcher(None, text, API_VERSION).ratio() > 0.8
    )


# ---------------------------------------------------------------------------------------------
# pydantic errors -> one line each


def _validation_messages(
    document: Document, model: type[Resource], error: ValidationError
) -> list[str]:
    by_path: dict[FieldPath, list[Any]] = {}
    for detail in error.errors(include_url=False):
        path = _user_path(document.data, detail["loc"], detail["type"])
        by_path.setdefault(path, []).append(detail)
    located = [
        (document.line_of(path), _dotted(path), text)
        for path, details in by_path.items()
        for text in _describe_all(model, path, details)
    ]
    located.sort(key=lambda item: item[0])  # stable: pydantic's field order within a line
    return [
        f"{document.source}:{line}: {dotted + ': ' if dotted else ''}{text}"
        for line, dotted, text in located
    ]


def _user_path(data: Any, loc: Sequence[str | int], error_type: str) -> FieldPath:
    """The path as the user wrote it. pydantic's loc also names union members and validators
    (`function-after[...]`, `str`, `[key]`); those are not in the data, so they are dropped.
    The last step of a missing field is not in the data either, and is kept."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        if _has(current, part):
            current = current[part]
        elif not (error_type == "missing" and index == len(loc) - 1):
            continue
        path.append(part)
    return tuple(path)


def _has(data: Any, part: str | int) -> bool:
    if isinstance(data, dict):
        return isinstance(part, str) and part in data
    return isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)


def _dotted(path: FieldPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_$-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


# What a type error expected, in words.
_EXPECTED = {
    "string_type": "a string",
    "bytes_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "decimal_type": "a number",
    "bool_type": "a boolean (true or false)",
    "bool_parsing": "a boolean (true or false)",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "frozen_set_type": "a list",
    "none_required": "null",
    "datetime_type": "a timestamp",
    "date_type": "a date",
}


def _describe_all(model: type[Resource], path: FieldPath, details: list[Any]) -> list[str]:
    """One field's errors. Union members each report a type error: when every error is one,
    say all that was expected at once; otherwise the specific errors say more."""
    typed = [d for d in details if d["type"] in _EXPECTED]
    others = [d for d in details if d["type"] not in _EXPECTED]
    if others:
        return list(dict.fromkeys(_describe(model, path, d) for d in others))
    expected = " or ".join(dict.fromkeys(_EXPECTED[d["type"]] for d in typed))
    return [f"expected {expected}, got {_describe_value(typed[0].get('input'))}"]


def _describe(model: type[Resource], path: FieldPath, detail: Any) -> str:
    kind, ctx, value = detail["type"], detail.get("ctx") or {}, detail.get("input")
    simple = {
        "missing": "required field missing",
        "finite_number": "must be a finite number",
        "greater_than": f"must be greater than {ctx.get('gt')}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "less_than": f"must be less than {ctx.get('lt')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "multiple_of": f"must be a multiple of {ctx.get('multiple_of')}",
        "string_pattern_mismatch": f"must match the pattern {ctx.get('pattern')}",
        "union_tag_not_found": f"missing {ctx.get('discriminator')}",
    }
    if kind in simple:
        got = "" if kind in ("missing", "union_tag_not_found") else f", got {_show(value)}"
        return simple[kind] + got
    if kind == "extra_forbidden":
        return "unknown field" + _suggestion(model, path)
    if kind in ("value_error", "assertion_error"):
        return str(detail["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", '"')
        return f"must be one of {expected}, got {_describe_value(value)}"
    if kind == "union_tag_invalid":
        expected = str(ctx.get("expected_tags", "")).replace("'", '"')
        return f"{ctx.get('discriminator')} must be one of {expected}, got {_show(value)}"
    return _describe_sizes(kind, ctx, value) or _describe_other(kind, detail)


def _describe_sizes(kind: str, ctx: dict[str, Any], value: Any) -> str | None:
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        items = "item" if bound == 1 else "items"
        least = "at least" if kind == "too_short" else "at most"
        return f"must have {least} {bound} {items}, got {_count(value)}"
    if kind == "string_too_short":
        bound = ctx.get("min_length")
        return "must not be empty" if bound == 1 else f"must be at least {bound} characters long"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    return None


def _describe_other(kind: str, detail: Any) -> str:
    message = str(detail["msg"])
    if kind.startswith(("datetime", "date", "time")):
        return (
            f"invalid timestamp {_show(detail.get('input'))}: use RFC 3339, such as "
            "2024-05-01T12:00:00Z"
        )
    return message[:1].lower() + message[1:]


def _count(value: Any) -> int | str:
    return len(value) if isinstance(value, list | dict | str) else "?"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    return _describe_value(value)


def _describe_value(value: Any) -> str:
    """What the user wrote, in YAML words: `the string "3"`, `a list`, `null`."""
    if isinstance(value, str):
        return f"the string {_quote(value)}"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    names = {type(None): "null", list: "a list", dict: "a mapping"}
    return names.get(type(value), type(value).__name__)


def _quote(value: Any, limit: int = 60) -> str:
    text = str(value)
    shown = text if len(text) <= limit else text[: limit - 3] + "..."
    return json.dumps(shown, ensure_ascii=False)


def _suggestion(model: type[Resource], path: FieldPath) -> str:
    """` (did you mean "name"?)` for an unknown field close to one the model has there."""
    if not path or not isinstance(path[-1], str):
        return ""
    known = _fields_at(model, path[:-1])
    lowered = {name.lower(): name for name in known}
    close = [lowered[path[-1].lower()]] if path[-1].lower() in lowered else []
    close = close or difflib.get_close_matches(path[-1], sorted(known), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _fields_at(model: type[Resource], path: FieldPath) -> set[str]:
    """The field names the model accepts at `path`, read from its JSON schema (which has the
    aliases users write, such as Alert's `for`)."""
    schema = _schema(model)
    nodes = [schema]
    for part in path:
        nodes = [child for node in nodes for child in _schema_children(schema, node, part)]
    return {name for node in nodes for name in _schema_properties(schema, node)}


@functools.cache
def _schema(model: type[Resource]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True)


def _schema_variants(root: dict[str, Any], node: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """The node itself, its `$ref` target and its anyOf/oneOf/allOf members, recursively."""
    if not isinstance(node, dict) or depth > 20:
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        yield from _schema_variants(root, root.get("$defs", {}).get(ref[8:]), depth + 1)
    yield node
    for key in ("anyOf", "oneOf", "allOf"):
        for member in node.get(key, []):
            yield from _schema_variants(root, member, depth + 1)


def _schema_children(root: dict[str, Any], node: Any, part: str | int) -> list[Any]:
    children = []
    for variant in _schema_variants(root, node):
        if isinstance(part, int) and isinstance(variant.get("items"), dict):
            children.append(variant["items"])
        elif isinstance(part, str) and part in variant.get("properties", {}):
            children.append(variant["properties"][part])
        elif isinstance(part, str) and isinstance(variant.get("additionalProperties"), dict):
            children.append(variant["additionalProperties"])
    return children


def _schema_properties(root: dict[str, Any], node: Any) -> set[str]:
    return {
        name for variant in _schema_variants(root, node) for name in variant.get("properties", {})
    }
