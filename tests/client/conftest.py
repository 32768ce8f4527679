"""A client over a fresh embedded store per test, and a small kind of the tests' own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

from constellation.apis.meta import Condition, Resource, StrictModel
from constellation.client.client import Client
from constellation.store import Store, open_store


class WidgetSpec(StrictModel):
    size: int = 1
    colour: str = "red"


class WidgetStatus(StrictModel):
    seen: int = 0
    conditions: list[Condition] = Field(default_factory=list)


class Widget(Resource):
    KIND = "Widget"
    PLURAL = "widgets"

    kind: Literal["Widget"] = "Widget"
    spec: WidgetSpec = Field(default_factory=WidgetSpec)
    status: WidgetStatus = Field(default_factory=WidgetStatus)


def widget(name: str, namespace: str = "default", **labels: str) -> Widget:
    return Widget.model_validate(
        {"metadata": {"name": name, "namespace": namespace, "labels": labels}}
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite://{tmp_path / 'state.db'}")
    yield opened
    opened.close()


@pytest.fixture
def client(store: Store) -> Client:
    return Client(store)
