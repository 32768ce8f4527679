"""`constellation convert` as users run it: manifests on stdout or -o, the report on stderr,
--strict, --report json, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from constellation.apis.loader import load_objects

CLI = str(Path(sys.executable).parent / "constellation")
COMPOSE = """\
services:
  web:
    image: python:3
    command: python3 -m http.server 8080
    ports: ["8080:8080"]
    volumes: ["./site:/srv"]
"""
CLEAN = """\
services:
  web:
    command: ["sleep", "infinity"]
    restart: always
"""


def run(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_manifests_on_stdout_report_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    result = run("convert", "-f", "compose.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("---\n# from compose.yaml:2 (services.web)\n")
    kinds = [obj.KIND for obj in load_objects(result.stdout, "out.yaml")]
    assert kinds == ["Instance", "Service"]
    assert "compose.yaml:2: service web -> instance/web, service/web [partial]" in result.stderr
    assert "dropped      volumes[0]: no bind mounts" in result.stderr


def test_output_file_and_json_report(tmp_path: Path) -> None:
    source, out = tmp_path / "compose.yaml", tmp_path / "out.yaml"
    source.write_text(COMPOSE)
    result = run("convert", "-f", str(source), "-o", str(out), "--report", "json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert len(load_objects(out.read_text(), str(out))) == 2
    report = json.loads(result.stderr)
    [web] = report["objects"]
    assert (web["object"], web["result"], web["line"]) == ("service web", "partial", 2)
    fields = {f["field"]: f["status"] for f in web["fields"]}
    assert fields["volumes[0]"] == "dropped" and fields["image"] == "approximated"
    assert report["summary"] == {"outputs": 2, "partial": 1}


def test_strict_fails_only_when_something_was_dropped() -> None:
    dropped = run("convert", "-f", "-", "--strict", stdin=COMPOSE)
    assert dropped.returncode == 1
    assert dropped.stderr.strip().endswith(
        "error: --strict: some fields were dropped (see the report)"
    )
    clean = run("convert", "-f", "-", "--strict", stdin=CLEAN)
    assert clean.returncode == 0, clean.stderr
    assert "[converted]" in clean.stderr


def test_errors_are_one_line_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: apps/v1\nmetadata:\n  name: web\n")
    result = run("convert", "-f", str(bad))
    assert result.returncode == 1
    missing = "kind: required field missing (a Kubernetes object needs apiVersion and kind)"
    assert result.stderr == f"error: {bad}:1: {missing}\n"
    assert result.stdout == ""


def test_from_compose_refuses_a_kubernetes_file() -> None:
    result = run("convert", "-f", "-", "--from", "compose", stdin="apiVersion: v1\nkind: Pod\n")
    assert result.returncode == 1
    assert result.stderr.startswith("error: <stdin>:1: a Compose file needs a services mapping")
