"""Fixtures that run the store conformance suite against every backend.

SQLite gets a fresh file per test; etcd is one real server process per session (started on
free loopback ports) and each test works under a key prefix of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.store import Store, open_store
from tests.etcd_server import EtcdServer

BACKENDS = ["sqlite", "etcd"]


@pytest.fixture(scope="session", autouse=True)
def resource_tracker_stopped() -> Iterator[None]:
    """The cross-process tests' spawn context starts multiprocessing's resource tracker, a
    process that outlives them until the interpreter exits; the session fails on a process
    left behind, so stop it when the store tests are done (no public API does)."""
    yield
    from multiprocessing import resource_tracker

    resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = EtcdServer(tmp_path_factory.mktemp("etcd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'state.db'}"
    server: EtcdServer = request.getfixturevalue("etcd_server")
    return server.url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def p() -> str:
    """A key prefix no other test uses (the etcd server is shared by the session)."""
    return f"/test/{uuid.uuid4().hex[:12]}/"
