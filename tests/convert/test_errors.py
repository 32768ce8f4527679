"""Input that cannot be converted: one clear line per problem, naming the file and the line."""

from __future__ import annotations

import pytest

from constellation.apis.loader import ManifestErrors
from tests.convert.helpers import convert_text


@pytest.mark.parametrize(
    ("text", "source_format", "expected"),
    [
        ("services:\n  web: [unclosed\n", "auto", "app.yaml:3: "),
        (
            "version: '3'\nnetworks:\n  front: {}\n",
            "auto",
            "app.yaml:1: a Compose file needs a services",
        ),
        ("image: nginx\n", "compose", "app.yaml:1: a Compose file needs a services"),
        (
            "apiVersion: apps/v1\nmetadata:\n  name: web\n",
            "auto",
            "app.yaml:1: kind: required field missing",
        ),
        (
            "kind: Deployment\nmetadata:\n  name: web\n",
            "auto",
            "app.yaml:1: apiVersion: required for Deployment",
        ),
        (
            "# comment\nkind: Deployment\napiVersion: apps/v9\nmetadata:\n  name: web\n",
            "auto",
            'app.yaml:3: unknown apiVersion "apps/v9" for Deployment (use apps/v1',
        ),
        (
            "kind: Widget\napiVersion: not a version\nmetadata:\n  name: web\n",
            "auto",
            'app.yaml:2: unknown apiVersion "not a version" for Widget',
        ),
        ("services:\n  web:\n    image: nginx\n", "kubernetes", "app.yaml:1: kind: required"),
        ("just: text\n", "auto", "app.yaml:1: not a Compose file (no services)"),
        (
            "services:\n  web:\n    command: ${PORT:?set PORT}\n",
            "auto",
            "app.yaml:3: PORT: set PORT",
        ),
        ("groups: {}\n", "auto", "app.yaml:1: groups: expected a list"),
    ],
)
def test_errors_name_file_and_line(text: str, source_format: str, expected: str) -> None:
    with pytest.raises(ManifestErrors) as raised:
        convert_text(text, source_format=source_format)  # type: ignore[arg-type]
    [message] = raised.value.messages
    assert message.startswith(expected), message
    assert "\n" not in message


def test_every_bad_document_is_reported_at_once() -> None:
    text = "kind: Deployment\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: ok}\n---\nx: 1\n"
    with pytest.raises(ManifestErrors) as raised:
        convert_text(text)
    assert [m.split(":")[1] for m in raised.value.messages] == ["1", "7"]
