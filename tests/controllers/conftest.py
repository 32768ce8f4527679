"""Controllers run against a real store: a fresh SQLite file, or a fresh real etcd server,
per test. Nodes are written as data (the agent comes with the runtime)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.apis.meta import Resource
from constellation.apis.registry import ALL_KINDS
from constellation.client.client import Client
from constellation.controllers.base import ControllerContext, DirectLister, Lister, Settings
from constellation.controllers.events import StoreEventRecorder
from constellation.store import Store, open_store
from tests.etcd_server import EtcdServer


@pytest.fixture(params=["sqlite", "etcd"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'state.db'}"
        return
    (tmp_path / "etcd").mkdir()
    with EtcdServer(tmp_path / "etcd") as server:
        yield server.url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def client(store: Store) -> Client:
    return Client(store)


def direct_context(client: Client, settings: Settings | None = None) -> ControllerContext:
    """A context whose listers read the store directly: what a reconciler sees is exact."""
    listers: dict[type[Resource], Lister[Resource]] = {
        kind: DirectLister(client, kind) for kind in ALL_KINDS
    }
    recorder = StoreEventRecorder(client, "test")
    return ControllerContext(client, listers, recorder, settings or Settings())


@pytest.fixture
def context(client: Client) -> ControllerContext:
    return direct_context(client)
