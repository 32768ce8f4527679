"""Runtime tests use real namespaces and cgroups, so they need root. As root (CI) they run and
fail on any error; a non-root developer gets a skip that says why."""

from __future__ import annotations

import os

import pytest

NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"),
    reason="needs root: creates namespaces, cgroups and mounts (CI runs as root and runs these)",
)
