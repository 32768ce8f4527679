"""What the gitops tests share: the real CLI on a real embedded store in a temp data dir, real
folders and real git repositories, and `gitops sync` run as a process the test stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

import pytest

from constellation.apis.instance import Instance
from constellation.client.client import Client
from constellation.store import default_url, open_store

CLI = str(Path(sys.executable).parent / "constellation")
T = TypeVar("T")


def instance(name: str, replicas: int = 1, labels: str = "", extra: str = "") -> str:
    """An Instance manifest; `labels` like `app: web` (one line)."""
    label_block = f"\n  labels: {{{labels}}}" if labels else ""
    return f"""\
apiVersion: constellation.dev/v1
kind: Instance
metadata:
  name: {name}{label_block}
spec:
  replicas: {replicas}
  command: [sleep, "3600"]{extra}
"""


BAD_INSTANCE = """\
apiVersion: constellation.dev/v1
kind: Instance
metadata:
  name: broken
spec:
  replicas: 1
  command: [sleep, "1"]
  restartPolicee: Always
"""


def run_cli(data_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(data_dir: Path, *args: str) -> str:
    result = run_cli(data_dir, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def wait_for(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """The first truthy value of `check()`, or fail after `timeout` with the last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: last {value!r}")
        time.sleep(interval)


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@dataclass
class Repo:
    """A bare `origin` and a working clone that commits and pushes to it."""

    origin: Path
    work: Path

    @property
    def url(self) -> str:
        return f"file://{self.origin}"

    def write(self, name: str, text: str) -> None:
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str, push: bool = True) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        if push:
            git(self.work, "push", "-q", "origin", "HEAD")
        return git(self.work, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(tmp_path, "clone", "-q", str(origin), str(work))
    git(work, "symbolic-ref", "HEAD", "refs/heads/main")
    git(work, "config", "user.email", "test@example.com")
    git(work, "config", "user.name", "test")
    return Repo(origin, work)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def client(data_dir: Path) -> Iterator[Client]:
    store = open_store(default_url(data_dir))
    yield Client(store)
    store.close()


def instances(client: Client) -> dict[str, Instance]:
    found, _ = client.list(Instance)
    return {obj.metadata.name: obj for obj in found}


@dataclass
class SyncProcess:
    """`constellation gitops sync ...` running in the background; output goes to files."""

    process: subprocess.Popen[str]
    stdout_path: Path
    stderr_path: Path
    files: list[IO[str]] = field(default_factory=list)

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
        code = self.process.wait(timeout=20)
        for file in self.files:
            file.close()
        return code


@pytest.fixture
def start_sync(data_dir: Path, tmp_path: Path) -> Iterator[Callable[..., SyncProcess]]:
    started: list[SyncProcess] = []

    def start(*args: str) -> SyncProcess:
        number = len(started)
        out, err = tmp_path / f"sync-{number}.out", tmp_path / f"sync-{number}.err"
        stdout, stderr = out.open("w"), err.open("w")
        process = subprocess.Popen(
            [CLI, "--data-dir", str(data_dir), "gitops", "sync", *args],
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
        sync = SyncProcess(process, out, err, [stdout, stderr])
        started.append(sync)
        return sync

    yield start
    for sync in started:
        sync.stop(signal.SIGKILL)
