"""Smoke test of the conversion benchmark harness: it runs and reports every figure.

Not a timed test: it asserts that the harness works, never how fast the conversion is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.quick import run_quick
from tests.convert.helpers import CORPUS


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not at {CORPUS}")
    report = run_quick("convert", tmp_path)
    assert set(report["figures"]) == {"convert_cli_seconds", "convert_library_ms"}
    for name, figure in report["figures"].items():
        for field in ("constellation", "baseline", "ratio"):
            value = figure[field]
            assert isinstance(value, int | float) and value > 0, (name, field, figure)
    assert report["figures"]["convert_cli_seconds"]["met"] in (True, False)
    assert report["corpus"]["files"] == len(
        [p for f in ("compose", "k8s", "alerts") for p in (CORPUS / f).glob("*.y*ml")]
    )
    assert report["corpus"]["manifests_written"] > 0
