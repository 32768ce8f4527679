"""CustomResourceDefinition-style documents for each kind, generated from the models.

They live in `crds/` so editors' YAML language servers and kubeconform-style validators can
check manifests without running Constellation. Those tools want self-contained schemas, so
`$ref`s are inlined; pydantic's auto-generated titles are dropped as noise.
"""

from __future__ import annotations

import copy
from typing import Any

from constellation.apis.meta import API_VERSION, Resource
from constellation.apis.registry import lookup

GROUP, VERSION = API_VERSION.split("/")


def crd_document(kind: type[Resource] | str) -> dict[str, Any]:
    """The CRD of `kind` (a model or any name `registry.lookup` accepts). Pure: no I/O."""
    model = lookup(kind) if isinstance(kind, str) else kind
    singular = model.KIND.lower()
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": openapi_schema(model)},
    }
    if "status" in model.model_fields:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{model.PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": model.KIND,
                "plural": model.PLURAL,
                "singular": singular,
                "shortNames": list(model.SHORT_NAMES),
            },
            "scope": "Namespaced" if model.NAMESPACED else "Cluster",
            "versions": [version],
        },
    }


def openapi_schema(model: type[Resource]) -> dict[str, Any]:
    """The model's JSON Schema (as validated from manifests) with every `$ref` inlined."""
    schema = model.model_json_schema(mode="validation")
    definitions = schema.pop("$defs", {})
    inlined = _inline(schema, definitions)
    assert isinstance(inlined, dict)
    if model.__doc__:
        inlined["description"] = model.__doc__.strip()
    return inlined


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = copy.deepcopy(definitions[ref.removeprefix("#/$defs/")])
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _inline({**target, **siblings}, definitions)
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "properties":
            # Property names are data, not schema keywords: a field named "title" stays.
            result[key] = {name: _inline(sub, definitions) for name, sub in value.items()}
        else:
            result[key] = _inline(value, definitions)
    return result
