"""Interpolation, env files, and other systems' spellings of sizes, durations and names."""

from __future__ import annotations

import pytest

from constellation.convert import values
from constellation.convert.interpolate import InterpolationError, Interpolator, parse_env_file
from constellation.convert.prometheus import metric_names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("$A-$B", "a-"),
        ("${B:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${B-${A}}", "a"),
        ("${A:+set}", "set"),
        ("${B:+set}", ""),
        ("$$A costs $$5", "$A costs $5"),
        ("no variables", "no variables"),
    ],
)
def test_compose_interpolation(text: str, expected: str) -> None:
    assert Interpolator({"A": "a", "EMPTY": ""}).text(text) == expected


def test_unset_variables_are_remembered_by_path() -> None:
    interpolator = Interpolator({})
    assert interpolator.data({"services": {"web": {"image": "x:${TAG}"}}}) == {
        "services": {"web": {"image": "x:"}}
    }
    assert interpolator.unset == [(("services", "web", "image"), "TAG")]


def test_required_variable_raises_with_its_message() -> None:
    with pytest.raises(InterpolationError, match="TAG: give a tag"):
        Interpolator({}).text("${TAG:?give a tag}")


def test_env_file_format() -> None:
    text = "# comment\nA=1\nexport B='two words'\nC=\"quoted\"\nD=x # trailing\n\nnot a pair\n"
    assert parse_env_file(text) == {"A": "1", "B": "two words", "C": "quoted", "D": "x"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("512m", "512Mi"), ("1gb", "1024Mi"), ("1.5G", "1536Mi"), (2**21, "2Mi")],
)
def test_docker_sizes_are_powers_of_1024(value: object, expected: str) -> None:
    assert values.docker_memory(value) == expected


def test_sizes_below_a_mebibyte_are_refused() -> None:
    with pytest.raises(ValueError, match="less than the 1Mi"):
        values.docker_memory("512k")


@pytest.mark.parametrize(("value", "expected"), [("0.5", "500m"), (2, "2"), (0.25, "250m")])
def test_cpus(value: object, expected: str) -> None:
    assert values.cpus(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("5m", "5m"), ("1d", "24h"), ("90s", "1m30s"), ("1h30m", "1h30m")]
)
def test_prometheus_durations(value: str, expected: str) -> None:
    assert values.go_duration(value) == expected


def test_dns_labels() -> None:
    assert values.dns_label("My_App.v2") == "my-app-v2"
    assert values.dns_label("HighErrorRate") == "higherrorrate"


def test_metric_names_leave_out_functions_labels_and_keywords() -> None:
    expr = (
        'sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / ignoring(code) '
        "sum(rate(http_requests_total[5m])) > 0.1 and on(job) up == 1"
    )
    assert metric_names(expr) == {"http_requests_total", "up"}
    assert metric_names('instance_ready_replicas{instance="web"} < 1') == {
        "instance_ready_replicas"
    }
    assert metric_names("1") == set()
