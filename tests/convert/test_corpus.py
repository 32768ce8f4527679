"""Every real Compose file, Kubernetes manifest and Prometheus rule file of the shared corpus:
converted without a crash, every emitted document a valid manifest, and every leaf of every
input accounted for in the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from constellation.apis.loader import load_objects, parse_documents
from constellation.convert.mapping import NOT_RECOGNISED
from constellation.convert.report import Conversion, leaf_paths
from tests.convert.helpers import CORPUS, convert_file, corpus_files

CLI = str(Path(sys.executable).parent / "constellation")
# Fields the corpus files hold that are in no specification: promtool's own test data has an
# unknown group field (`namespace`, `ownership`) and a misspelt `annotation`.
UNKNOWN_ON_PURPOSE = {"namespace", "ownership", "annotation"}


def _ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


MANIFESTS = corpus_files("compose", "k8s", "alerts") if CORPUS.is_dir() else []


@pytest.mark.parametrize("path", MANIFESTS, ids=_ids(MANIFESTS))
def test_every_leaf_is_accounted_for(path: Path) -> None:
    conversion = convert_file(path)
    documents = parse_documents(path.read_text(encoding="utf-8"), str(path))
    assert conversion.objects, "no object reported"
    for index, document in enumerate(documents):
        spoken_for = _absolute_note_paths(conversion, index)
        for leaf in leaf_paths(document.data):
            assert any(leaf[: len(p)] == p for p in spoken_for), (
                f"{path.name} document {index}: {leaf} is in no report note"
            )


@pytest.mark.parametrize("path", MANIFESTS, ids=_ids(MANIFESTS))
def test_every_output_is_a_valid_manifest(path: Path) -> None:
    conversion = convert_file(path)
    for output in conversion.outputs:
        text = json.dumps(output.data)
        [obj] = load_objects(text, output.origin)
        assert obj.to_dict()["metadata"]["name"] == output.data["metadata"]["name"]


@pytest.mark.parametrize("path", MANIFESTS, ids=_ids(MANIFESTS))
def test_only_fields_in_no_specification_are_not_recognised(path: Path) -> None:
    conversion = convert_file(path)
    unknown = {
        str(note.path[-1])
        for obj in conversion.objects
        for note in obj.notes
        if note.detail == NOT_RECOGNISED and note.path
    }
    assert unknown <= UNKNOWN_ON_PURPOSE, f"the mapping table lacks {unknown}"


def test_unrecognised_compose_fields_are_not_in_the_compose_schema() -> None:
    """The converter knows every service field of the Compose Specification."""
    from constellation.convert.mapping import lookup

    schemas = list((CORPUS / "schema").glob("compose-spec*.json"))
    if not schemas:
        pytest.skip("no Compose schema in the corpus")
    schema = json.loads(schemas[0].read_text())
    service_fields = set(schema["definitions"]["service"]["properties"])
    missing = {field for field in service_fields if lookup("compose", field) is None}
    # Sub-fields the converter reads one level down are in the table under their parent.
    missing -= {"deploy", "healthcheck"}
    assert not missing, f"Compose service fields without a mapping rule: {sorted(missing)}"
    top_fields = set(schema["properties"]) - {"services"}
    assert {f for f in top_fields if lookup("compose-file", f) is None} == set()


@pytest.mark.parametrize("folder", ["compose", "k8s", "alerts"])
def test_converted_folders_pass_apply_dry_run(folder: str, tmp_path: Path) -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not at {CORPUS}")
    out = tmp_path / "converted.yaml"
    base = [CLI, "--data-dir", str(tmp_path / "data")]
    convert = subprocess.run(
        [*base, "convert", "-f", str(CORPUS / folder), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert convert.returncode == 0, convert.stderr
    emitted = out.read_text().count("\n---\n") + out.read_text().startswith("---\n")
    assert emitted > 0
    applied = subprocess.run(
        [*base, "apply", "--dry-run", "-f", str(out)], capture_output=True, text=True, timeout=60
    )
    assert applied.returncode == 0, applied.stderr
    assert len(applied.stdout.splitlines()) == emitted


def _absolute_note_paths(conversion: Conversion, document: int) -> list[tuple[str | int, ...]]:
    return [
        (*obj.root, *note.path)
        for obj in conversion.objects
        if obj.document == document
        for note in obj.notes
        if note.path is not None
    ]
