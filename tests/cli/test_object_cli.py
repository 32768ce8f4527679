"""The object verbs end to end: the real `constellation` binary on a real embedded store."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
CORPUS = ROOT.parent / "shared" / "corpus"
CLI = str(Path(sys.executable).parent / "constellation")


def run(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


def ok(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    result = run(data_dir, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


WEB = """\
apiVersion: constellation.dev/v1
kind: Instance
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  command: [python3, -m, http.server]
"""


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_each_example_applies_and_round_trips_through_get(tmp_path: Path, example: Path) -> None:
    first = ok(tmp_path, "apply", "-f", str(example))
    assert first.strip() and all(line.endswith(" created") for line in first.splitlines())
    refs = [line.split()[0] for line in first.splitlines()]
    for ref in refs:
        kind, name = ref.split("/")
        exported = ok(tmp_path, "get", kind, name, "-o", "yaml")
        again = ok(tmp_path, "apply", "-f", "-", stdin=exported)
        assert again.strip() == f"{ref} unchanged"
    assert ok(tmp_path, "apply", "-f", str(example)).splitlines() == [
        f"{ref} unchanged" for ref in refs
    ]


def test_apply_reports_created_configured_unchanged(tmp_path: Path) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(WEB)
    assert ok(tmp_path, "apply", "-f", str(manifest)).strip() == "instance/web created"
    assert ok(tmp_path, "apply", "-f", str(manifest)).strip() == "instance/web unchanged"
    manifest.write_text(WEB.replace("replicas: 2", "replicas: 3"))
    assert ok(tmp_path, "apply", "-f", str(manifest), "--dry-run").strip() == (
        "instance/web configured (dry run)"
    )
    assert ok(tmp_path, "apply", "-f", str(manifest)).strip() == "instance/web configured"
    shown = json.loads(ok(tmp_path, "get", "inst", "web", "-o", "json"))
    assert shown["spec"]["replicas"] == 3
    assert shown["metadata"]["generation"] == 2


def test_one_bad_document_means_nothing_is_written(tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    bad = WEB.replace("name: web", "name: api").replace(
        "  command:", "  resources:\n    limits:\n      memory: 64MB\n  command:"
    )
    manifest.write_text(WEB + "---\n" + bad)
    result = run(tmp_path, "apply", "-f", str(manifest))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f'error: {manifest}:19: spec.resources.limits.memory: invalid quantity "64MB" '
        '(did you mean "64Mi"?)'
    )
    assert ok(tmp_path, "get", "instances").strip() == "No resources found."


CORPUS_FILES = sorted(p for p in CORPUS.glob("*/*") if p.suffix in (".yaml", ".yml", ".json"))


def test_the_corpus_is_there() -> None:
    """Without ../shared/corpus the test below would collect nothing and pass silently."""
    assert len(CORPUS_FILES) >= 100, f"expected the shared corpus at {CORPUS}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_other_systems_files_are_pointed_at_convert(tmp_path: Path, path: Path) -> None:
    result = run(tmp_path, "apply", "-f", str(path), "--dry-run")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert all(line.startswith("error: ") for line in result.stderr.splitlines())
    assert "constellation convert" in result.stderr or "not a Constellation" in result.stderr


def test_get_tables_names_and_selectors(tmp_path: Path) -> None:
    ok(tmp_path, "apply", "-f", "-", stdin=WEB + "---\n" + WEB.replace("web", "api"))
    table = ok(tmp_path, "get", "instances").splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert [line.split()[:2] for line in table[1:]] == [["api", "0/2"], ["web", "0/2"]]
    assert ok(tmp_path, "get", "inst", "-l", "app=web", "-o", "name").split() == ["instance/web"]
    wide = ok(tmp_path, "get", "inst", "web", "-o", "wide").splitlines()[0].split()
    assert "COMMAND" in wide
    assert ok(tmp_path, "get", "inst", "-A").splitlines()[0].split()[0] == "NAMESPACE"
    listed = json.loads(ok(tmp_path, "get", "instance", "-o", "json"))
    assert listed["kind"] == "List" and len(listed["items"]) == 2


def test_get_watch_streams_changes(tmp_path: Path) -> None:
    ok(tmp_path, "apply", "-f", "-", stdin=WEB)
    watcher = subprocess.Popen(
        [CLI, "--data-dir", str(tmp_path), "get", "inst", "-w", "-o", "name"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "instance/web"
        ok(tmp_path, "apply", "-f", "-", stdin=WEB.replace("replicas: 2", "replicas: 4"))
        assert watcher.stdout.readline().strip() == "instance/web"
        ok(tmp_path, "delete", "instance", "web")
        assert watcher.stdout.readline().strip() == "instance/web deleted"
    finally:
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=10) == 130


def test_describe_shows_spec_status_and_events(tmp_path: Path) -> None:
    ok(tmp_path, "apply", "-f", "-", stdin=WEB)
    event = """\
apiVersion: constellation.dev/v1
kind: Event
metadata: {name: web.1}
involvedObject: {kind: Instance, name: web, namespace: default}
reason: ScalingUp
message: scaled up to 2
"""
    ok(tmp_path, "apply", "-f", "-", stdin=event)
    text = ok(tmp_path, "describe", "instance", "web")
    assert "Name:              web" in text
    assert "Spec:" in text and "replicas: 2" in text
    assert "Conditions:\n  <none>" in text
    assert "ScalingUp" in text and "scaled up to 2" in text


def test_delete_by_name_selector_and_file(tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(WEB + "---\n" + WEB.replace("web", "api"))
    ok(tmp_path, "apply", "-f", str(manifest))
    assert ok(tmp_path, "delete", "inst", "-l", "app=api").strip() == "instance/api deleted"
    assert ok(tmp_path, "delete", "-f", str(manifest), "--ignore-not-found", "--wait").strip() == (
        "instance/web deleted"
    )
    missing = run(tmp_path, "delete", "instance", "web")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: instance default/web not found"


def test_diff_exit_status_and_output(tmp_path: Path) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(WEB)
    assert run(tmp_path, "diff", "-f", str(manifest)).returncode == 1  # not created yet
    ok(tmp_path, "apply", "-f", str(manifest))
    same = run(tmp_path, "diff", "-f", str(manifest))
    assert (same.returncode, same.stdout) == (0, "")
    manifest.write_text(WEB.replace("replicas: 2", "replicas: 5"))
    changed = run(tmp_path, "diff", "-f", str(manifest))
    assert changed.returncode == 1
    assert "-  replicas: 2" in changed.stdout and "+  replicas: 5" in changed.stdout
    assert run(tmp_path, "diff", "-f", str(tmp_path / "missing.yaml")).returncode == 2


def test_prune_from_the_command_line(tmp_path: Path) -> None:
    both = tmp_path / "both.yaml"
    both.write_text(WEB + "---\n" + WEB.replace("name: web", "name: old"))
    ok(tmp_path, "apply", "-f", str(both), "--prune", "-l", "app=web")
    ok(tmp_path, "apply", "-f", "-", stdin=WEB.replace("name: web", "name: by-hand"))
    only_web = tmp_path / "web.yaml"
    only_web.write_text(WEB)
    out = ok(tmp_path, "apply", "-f", str(only_web), "--prune", "-l", "app=web")
    assert out.splitlines() == ["instance/web unchanged", "instance/old pruned"]
    assert ok(tmp_path, "get", "inst", "-o", "name").split() == ["instance/by-hand", "instance/web"]
    refused = run(tmp_path, "apply", "-f", str(only_web), "--prune")
    assert refused.returncode == 1 and "--prune needs -l" in refused.stderr


def test_unknown_kind_and_bad_selector_are_one_line_errors(tmp_path: Path) -> None:
    for args, fragment in [
        (("get", "widgets"), 'unknown kind "widgets"'),
        (("get", "inst", "-l", "a in b"), "invalid label selector"),
        (("get", "inst", "-o", "xml"), "unknown output format"),
        (("apply", "-f", str(tmp_path / "nope.yaml")), "no such file or directory"),
    ]:
        result = run(tmp_path, *args)
        assert result.returncode == 1, args
        assert result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr


def test_version_starts_without_loading_the_heavy_modules(tmp_path: Path) -> None:
    assert ok(tmp_path, "version").strip() == "0.1.0"
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, constellation.cli.main as m; "
            "print(sorted(n for n in ('pydantic', 'rich', 'ruamel', 'etcd3', 'grpc') "
            "if n in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "[]"


def test_get_yaml_round_trips_long_strings_with_escapes(tmp_path: Path) -> None:
    awkward = "x" * 70 + "0\\x1f\\x7f\\x7f\\x7f\\U00010000\\U00010000 0 0"
    manifest = WEB.replace("command: [python3, -m, http.server]", f'command: [sh, "{awkward}"]')
    ok(tmp_path, "apply", "-f", "-", stdin=manifest)
    exported = ok(tmp_path, "get", "inst", "web", "-o", "yaml")
    assert ok(tmp_path, "apply", "-f", "-", stdin=exported).strip() == "instance/web unchanged"
    shown = json.loads(ok(tmp_path, "get", "inst", "web", "-o", "json"))
    assert shown["spec"]["command"][1] == "x" * 70 + "0\x1f\x7f\x7f\x7f\U00010000\U00010000 0 0"
