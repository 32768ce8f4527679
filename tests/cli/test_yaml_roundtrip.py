"""`get -o yaml` reads back as exactly the stored object, whatever characters its strings hold.

Through the real `constellation` binary on a real embedded store: the output of `get -o yaml`,
parsed as `apply` parses manifests, equals the object `get -o json` shows, and applying it
changes nothing. The strings are the ones YAML treats specially, NEL (U+0085) first: ruamel
reads it, like LS and PS, as a line break, so written raw it came back as a space.
"""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from constellation.apis.loader import parse_documents

CLI = str(Path(sys.executable).parent / "constellation")

# YAML 1.1's extra line breaks, then other characters a YAML writer must escape or quote.
RAW_BREAKS = ["\x85", "\u2028", "\u2029"]
AWKWARD = {
    "nel": "\x85",
    "nel-inside": "before\x85after",
    "nel-twice": "\x85\x85",
    "nel-after-newline": "one\ntwo\x85three",
    "nel-with-spaces": " \x85 ",
    "line-separator": "a\u2028b",
    "paragraph-separator": "a\u2029b",
    "all-three": "\u2028\x85\u2029",
    "bom": "\ufeffstart",
    "tab-cr-lf": "\ta\r\nb\n",
    "controls": "\x1b[0m\x7f\x9f",
    "nbsp-end": "a\xa0",
    "spaces": "  both  ",
    "comment": "# not a comment",
    "colon": "key: value",
    "quotes": "'single' \"double\"",
    "indicator": "- dash",
    "bool-word": "yes",
    "null-word": "~",
    "number-like": "0x1F",
    "empty": "",
}


def run(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [CLI, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def manifest() -> str:
    """An Instance with every awkward string as an env value, a command argument and an
    annotation. JSON with \\u escapes, so the manifest itself holds no raw break."""
    return json.dumps(
        {
            "apiVersion": "constellation.dev/v1",
            "kind": "Instance",
            "metadata": {
                "name": "web",
                "labels": {"app": "web"},
                "annotations": {f"example.com/{name}": text for name, text in AWKWARD.items()},
            },
            "spec": {
                "replicas": 1,
                "command": ["sh", "-c", "true", *AWKWARD.values()],
                "env": [
                    {"name": name.upper().replace("-", "_"), "value": text}
                    for name, text in AWKWARD.items()
                ],
            },
        }
    )


@pytest.fixture
def exported(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """The applied Instance as `get -o yaml` prints it, and as `get -o json` does."""
    assert run(tmp_path, "apply", "-f", "-", stdin=manifest()).strip() == "instance/web created"
    stored = json.loads(run(tmp_path, "get", "inst", "web", "-o", "json"))
    return run(tmp_path, "get", "inst", "web", "-o", "yaml"), stored


def test_the_stored_object_kept_every_string(exported: tuple[str, dict[str, Any]]) -> None:
    """Guards the test itself: the awkward strings reached the store unchanged."""
    _, stored = exported
    assert [env["value"] for env in stored["spec"]["env"]] == list(AWKWARD.values())
    assert stored["spec"]["command"][3:] == list(AWKWARD.values())


def test_get_yaml_parses_back_to_the_stored_object(exported: tuple[str, dict[str, Any]]) -> None:
    text, stored = exported
    [document] = parse_documents(text, "<get -o yaml>")
    assert document.data == stored
    # The pure-Python reader treats NEL, LS and PS as breaks too: it must agree.
    assert YAML(typ="safe", pure=True).load(StringIO(text)) == stored


def test_get_yaml_writes_no_raw_line_break_character(
    exported: tuple[str, dict[str, Any]],
) -> None:
    """Escaped, a reader that takes them for line breaks (YAML 1.1) reads the same value."""
    text, _ = exported
    assert [char for char in RAW_BREAKS if char in text] == []
    assert '"before\\Nafter"' in text


def test_applying_get_yaml_output_is_a_no_op(
    tmp_path: Path, exported: tuple[str, dict[str, Any]]
) -> None:
    text, stored = exported
    assert run(tmp_path, "apply", "-f", "-", stdin=text).strip() == "instance/web unchanged"
    assert json.loads(run(tmp_path, "get", "inst", "web", "-o", "json")) == stored
