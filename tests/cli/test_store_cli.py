"""The CLI against real stores in real processes: round trips, and every bad input gives one
line on stderr, a non-zero exit and no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from constellation.store import open_store
from tests.etcd_server import EtcdServer, free_port

CLI = str(Path(sys.executable).parent / "constellation")


def run(*args: str, data_dir: Path, store: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [CLI, "--data-dir", str(data_dir)]
    if store:
        command += ["--store", store]
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_round_trip_on_the_embedded_store(tmp_path: Path) -> None:
    assert run("store", "put", "/a/x", "one", data_dir=tmp_path).returncode == 0
    assert run("store", "put", "/a/x", "two", data_dir=tmp_path).returncode == 0
    got = run("store", "get", "/a/x", data_dir=tmp_path)
    assert got.returncode == 0
    assert got.stdout.splitlines()[1].split() == ["/a/x", "2", "2", "two"]
    watched = run("store", "watch", "/a/", "--from", "1", "--count", "2", data_dir=tmp_path)
    assert watched.stdout.splitlines() == ["1 PUT /a/x one", "2 PUT /a/x two"]
    assert run("store", "delete", "/a/x", data_dir=tmp_path).stdout.strip() == (
        "/a/x deleted at revision 3"
    )
    assert run("store", "list", "/a/", data_dir=tmp_path).stdout.splitlines()[1:] == []
    assert (tmp_path / "state.db").is_file()


def test_round_trip_on_etcd(tmp_path: Path) -> None:
    (tmp_path / "etcd").mkdir()
    with EtcdServer(tmp_path / "etcd") as server:
        assert (
            run("store", "put", "/a/x", "one", data_dir=tmp_path, store=server.url).returncode == 0
        )
        got = run("store", "get", "/a/x", data_dir=tmp_path, store=server.url)
        assert got.stdout.splitlines()[1].split()[0::3] == ["/a/x", "one"]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("foo://x", "unknown scheme 'foo'"),
        ("no-scheme", "expected sqlite:///PATH or etcd://HOST:PORT"),
        ("etcd://localhost", "is not HOST:PORT"),
        ("etcd://h:2379?colour=red", "unknown option 'colour'"),
        ("etcd://h:2379?cert=/c.pem", "cert and key go together"),
        ("sqlite://", "no database path"),
        ("sqlite:///tmp/x.db?retain=many", "retain must be a whole number"),
    ],
)
def test_invalid_store_urls(tmp_path: Path, url: str, fragment: str) -> None:
    assert_one_line_error(run("store", "status", data_dir=tmp_path, store=url), fragment)


def test_unreachable_etcd_endpoint(tmp_path: Path) -> None:
    url = f"etcd://127.0.0.1:{free_port()}?timeout=1"
    assert_one_line_error(run("store", "status", data_dir=tmp_path, store=url), "127.0.0.1")


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_text("hello, I am a text file\n" * 100)
    assert_one_line_error(run("store", "status", data_dir=tmp_path), "file is not a database")


def test_a_corrupt_database(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = open_store(f"sqlite://{path}")
    for i in range(50):
        store.create(f"/k{i}", b"x" * 400)
    store.close()
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)
    path.write_bytes(bytes(data))
    assert_one_line_error(run("store", "list", "/", data_dir=tmp_path), "malformed")


def test_a_missing_key(tmp_path: Path) -> None:
    assert_one_line_error(run("store", "get", "/nope", data_dir=tmp_path), "'/nope' not found")


def _read_only_run(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with `directory` read-only. Root ignores permission bits, so as root the
    directory is bind-mounted read-only inside a private mount namespace of the child alone."""
    command = [CLI, "--data-dir", str(directory), *args]
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=60)
        finally:
            directory.chmod(0o755)
    assert shutil.which("unshare"), "root tests need util-linux's unshare"
    script = (
        'mount --make-rprivate / && mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"'
        ' && shift && exec "$@"'
    )
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", str(directory), *command],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_read_only_data_dir_without_a_store(tmp_path: Path) -> None:
    result = _read_only_run(tmp_path, "store", "status")
    assert_one_line_error(result, f"data directory {tmp_path} is read-only")
    assert not (tmp_path / "state.db").exists()


def test_a_read_only_data_dir_with_a_store(tmp_path: Path) -> None:
    assert run("store", "put", "/a", "b", data_dir=tmp_path).returncode == 0
    result = _read_only_run(tmp_path, "store", "get", "/a")
    assert_one_line_error(result, "read-only")
