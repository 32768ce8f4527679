"""The committed `crds/` must be what the models generate, and the schemas must be usable:
self-contained (no `$ref`), strict (additionalProperties false) and true to the examples."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from ruamel.yaml import YAML
from typer.testing import CliRunner

from constellation.apis import registry
from constellation.apis.crd import crd_document
from constellation.apis.meta import Resource
from constellation.cli.crds_cmd import crds, render_crds, write_crds

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds"


def test_committed_crds_match_the_models(tmp_path: Path) -> None:
    write_crds(tmp_path)
    generated = {path.name: path.read_text() for path in sorted(tmp_path.iterdir())}
    committed = {path.name: path.read_text() for path in sorted(COMMITTED.glob("*.yaml"))}
    stale = sorted(name for name in generated.keys() | committed.keys()
                   if generated.get(name) != committed.get(name))  # fmt: skip
    assert not stale, f"crds/ is stale ({', '.join(stale)}): run `constellation crds -o crds/`"


def test_rendering_is_deterministic() -> None:
    assert render_crds() == render_crds()
    assert list(render_crds()) == sorted(render_crds())


def test_crds_command_writes_one_file_per_kind(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(crds)
    result = CliRunner().invoke(app, ["-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    names = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert names == sorted(f"{kind.KIND.lower()}.yaml" for kind in registry.ALL_KINDS)
    assert "wrote" in result.output


@pytest.mark.parametrize("kind", registry.ALL_KINDS, ids=lambda k: k.KIND)
def test_document_shape(kind: type[Resource]) -> None:
    doc = crd_document(kind)
    assert doc["apiVersion"] == "apiextensions.k8s.io/v1"
    assert doc["kind"] == "CustomResourceDefinition"
    assert doc["metadata"]["name"] == f"{kind.PLURAL}.constellation.dev"
    spec = doc["spec"]
    assert spec["group"] == "constellation.dev"
    assert spec["names"] == {
        "kind": kind.KIND,
        "plural": kind.PLURAL,
        "singular": kind.KIND.lower(),
        "shortNames": list(kind.SHORT_NAMES),
    }
    assert spec["scope"] == ("Namespaced" if kind.NAMESPACED else "Cluster")
    schema = spec["versions"][0]["schema"]["openAPIV3Schema"]
    assert "$ref" not in repr(schema) and "$defs" not in repr(schema)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["kind"]["const"] == kind.KIND
    assert crd_document(kind.KIND.lower()) == doc


def test_alert_schema_uses_the_for_alias() -> None:
    schema = crd_document("alert")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    properties = schema["properties"]["spec"]["properties"]
    assert "for" in properties and "for_" not in properties


def test_nested_models_stay_strict() -> None:
    schema = crd_document("inst")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    limits = schema["properties"]["spec"]["properties"]["resources"]["properties"]["limits"]
    assert limits["additionalProperties"] is False
    assert "anyOf" in limits["properties"]["memory"]


# A small JSON Schema checker for the keywords pydantic emits; enough to show the schemas
# accept every example and reject what the models reject for structure.


def schema_errors(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    if "anyOf" in schema:
        options = [schema_errors(option, value, path) for option in schema["anyOf"]]
        return [] if any(not errors for errors in options) else [f"{path}: matches no anyOf"]
    checks = (_type, _enum, _pattern, _bounds, _object, _array)
    return [error for check in checks for error in check(schema, value, path)]


TYPES: dict[str, Any] = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
                         "object": dict, "array": list, "null": type(None)}  # fmt: skip


def _type(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    wanted = schema.get("type")
    if wanted is None:
        return []
    ok = isinstance(value, TYPES[wanted]) and not (isinstance(value, bool) and wanted != "boolean")
    return [] if ok else [f"{path}: not {wanted}"]


def _enum(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    if "const" in schema and value != schema["const"]:
        return [f"{path}: not {schema['const']}"]
    return [f"{path}: not in enum"] if "enum" in schema and value not in schema["enum"] else []


def _pattern(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    pattern = schema.get("pattern")
    if pattern and isinstance(value, str) and not re.search(pattern, value):
        return [f"{path}: does not match {pattern}"]
    return []


def _bounds(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        return [f"{path}: out of range"]
    return []


def _object(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return []
    properties = schema.get("properties", {})
    errors = [
        f"{path}: {key} is required" for key in schema.get("required", ()) if key not in value
    ]
    for key, item in value.items():
        sub = properties.get(key, schema.get("additionalProperties", True))
        if sub is False:
            errors.append(f"{path}.{key}: unknown field")
        elif isinstance(sub, dict):
            errors += schema_errors(sub, item, f"{path}.{key}")
    return errors


def _array(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or "items" not in schema:
        return []
    return [
        e
        for i, item in enumerate(value)
        for e in schema_errors(schema["items"], item, f"{path}.{i}")
    ]


def examples() -> list[dict[str, Any]]:
    yaml = YAML(typ="safe", pure=True)
    paths = sorted((ROOT / "manifests" / "examples").rglob("*.yaml"))
    return [doc for path in paths for doc in yaml.load_all(path.read_text()) if doc]


def schema_for(doc: dict[str, Any]) -> dict[str, Any]:
    crd = crd_document(registry.kind_for(doc["apiVersion"], doc["kind"]))
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("doc", examples(), ids=lambda d: f"{d['kind']}-{d['metadata']['name']}")
def test_examples_satisfy_their_schema(doc: dict[str, Any]) -> None:
    assert schema_errors(schema_for(doc), doc) == []


def test_schema_rejects_unknown_fields_and_bad_quantities() -> None:
    doc = next(d for d in examples() if d["kind"] == "Instance")
    doc["spec"]["replica"] = 3
    doc["spec"]["resources"]["limits"]["memory"] = "64MB"
    errors = schema_errors(schema_for(doc), doc)
    assert ".spec.replica: unknown field" in errors
    assert ".spec.resources.limits.memory: matches no anyOf" in errors
