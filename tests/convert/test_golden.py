"""Golden files: representative inputs and the exact manifests they convert to, plus the report
facts that matter for each (what was approximated or dropped, and why).

The expected files are the converter's output, read and checked by hand when written; after
a deliberate change, regenerate one with
`constellation convert -f tests/convert/golden/NAME.yaml` (run in tests/convert/golden)."""

from __future__ import annotations

import pytest

from constellation.cli.convert_cmd import manifests_text
from constellation.convert.report import Conversion, ObjectReport, dotted
from constellation.convert.run import convert
from tests.convert.helpers import ENVIRON, GOLDEN

CASES = ["compose-app", "deployment-service-hpa", "daemonset", "multi-container-pod"]


def converted(name: str) -> Conversion:
    text = (GOLDEN / f"{name}.yaml").read_text()
    return convert([(f"{name}.yaml", text)], "auto", ENVIRON)


@pytest.mark.parametrize("name", CASES)
def test_manifests_match_the_golden_file(name: str) -> None:
    expected = (GOLDEN / f"{name}.expected.yaml").read_text()
    assert manifests_text(converted(name)) == expected


def notes(report: ObjectReport) -> dict[str, tuple[str, str]]:
    return {dotted(note.path): (note.status, note.detail) for note in report.notes}


def test_compose_app_report() -> None:
    web, db, top = converted("compose-app").objects
    assert (web.what, web.result) == ("service web", "approximated")
    assert web.outputs == ["instance/web", "service/web"]
    web_notes = notes(web)
    assert web_notes["depends_on"][0] == "approximated"
    assert web_notes["restart"] == ("approximated", "unless-stopped: Always")
    assert web_notes["image"][0] == "approximated"
    assert db.result == "partial"
    assert notes(db)["image"][0] == "dropped"  # no command: a placeholder runs instead
    assert "db/password.txt" in notes(db)["secrets[0]"][1]
    assert notes(top)["volumes"][0] == "dropped"


def test_deployment_service_hpa_report() -> None:
    deployment, service, hpa = converted("deployment-service-hpa").objects
    assert notes(deployment)["spec.template.spec.containers[0].env[1]"][0] == "dropped"
    assert notes(service)["spec.ports[0].nodePort"][0] == "dropped"
    assert notes(service)["spec.type"][0] == "approximated"
    assert (hpa.result, hpa.outputs) == ("converted", ["scalepolicy/frontend"])


def test_daemonset_is_one_replica_per_node() -> None:
    conversion = converted("daemonset")
    [instance] = conversion.outputs
    assert instance.data["spec"]["placement"] == {"maxPerNode": 1}
    assert instance.data["spec"]["isolation"]["namespaces"] == ["mount", "uts", "ipc"]
    [report] = conversion.objects
    assert notes(report)["spec.template.spec.tolerations"][0] == "dropped"


def test_multi_container_pod_says_what_sharing_was_lost() -> None:
    conversion = converted("multi-container-pod")
    assert [o.ref for o in conversion.outputs] == ["instance/web-app", "instance/web-log-shipper"]
    [report] = conversion.objects
    status, detail = notes(report)["(object)"]
    assert status == "approximated" and "no longer share localhost, volumes" in detail
