"""Every kind's validators, good and bad values, the examples, the registry, and properties:
valid manifests round-trip, broken ones fail with a ValidationError and nothing else."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML

from constellation.apis import registry
from constellation.apis.alert import Alert
from constellation.apis.cron import validate_cron
from constellation.apis.event import Event
from constellation.apis.instance import INSTANCE_LABEL, Instance, ReplicaTemplate
from constellation.apis.meta import Condition, Resource
from constellation.apis.node import Node
from constellation.apis.replica import Replica
from constellation.apis.scalepolicy import ScalePolicy
from constellation.apis.service import Service
from tests.apis import strategies

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").rglob("*.yaml"))
V1 = "constellation.dev/v1"

MINIMAL: dict[str, dict[str, Any]] = {
    "Instance": {"spec": {"command": ["sleep", "infinity"]}},
    "Service": {"spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}},
    "ScalePolicy": {"spec": {"targetRef": {"name": "web"}, "maxReplicas": 3}},
    "Alert": {"spec": {"expr": "up == 0"}},
    "Replica": {"spec": {"instanceName": "web", "ordinal": 0, "template": {"command": ["true"]}}},
    "Node": {},
    "Event": {"involvedObject": {"kind": "Instance", "name": "web"}, "reason": "Started"},
}


def manifest(kind: str, **paths: Any) -> dict[str, Any]:
    """A minimal valid manifest of `kind` with dotted `paths` (`spec__replicas`) set."""
    doc = {
        "apiVersion": V1,
        "kind": kind,
        "metadata": {"name": "web"},
        **copy.deepcopy(MINIMAL[kind]),
    }
    for dotted, value in paths.items():
        set_path(doc, dotted.split("__"), value)
    return doc


def set_path(doc: Any, path: list[str], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[int(key)] if isinstance(doc, list) else doc.setdefault(key, {})
    if isinstance(doc, list):
        doc[int(path[-1])] = value
    else:
        doc[path[-1]] = value


def rejection(doc: dict[str, Any]) -> list[tuple[str, str]]:
    model = registry.kind_for(doc["apiVersion"], doc["kind"])
    with pytest.raises(ValidationError) as caught:
        model.model_validate(doc)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in caught.value.errors()]


def assert_rejected(doc: dict[str, Any], loc: str, message: str) -> None:
    errors = rejection(doc)
    assert any(where == loc and message in msg for where, msg in errors), errors


# Good values: each must validate.

GOOD = [
    manifest("Instance"),
    manifest("Instance", spec__replicas=0),
    manifest(
        "Instance",
        spec__resources={
            "requests": {"cpu": 0.5, "memory": "64Mi"},
            "limits": {"cpu": 1, "memory": 134217728},
        },
    ),
    manifest("Instance", spec__user="1000:1000"),
    manifest("Instance", spec__isolation={"namespaces": ["pid", "net"], "network": "private"}),
    manifest(
        "Instance",
        spec__isolation={"capabilities": ["CAP_NET_BIND_SERVICE"], "readOnlyPaths": ["/usr"]},
    ),
    manifest(
        "Instance",
        spec__ports=[
            {"name": "http"},
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53},
        ],
    ),
    manifest(
        "Instance",
        spec__ports=[{"name": "http"}],
        spec__readinessProbe={
            "httpGet": {"port": "http", "path": "/healthz", "headers": {"X-Probe": "1"}}
        },
    ),
    manifest("Instance", spec__livenessProbe={"tcpSocket": {"port": 8080}}),
    manifest("Instance", spec__updateStrategy={"maxUnavailable": "25%", "maxSurge": "25%"}),
    manifest("Instance", spec__updateStrategy={"type": "Recreate", "maxUnavailable": 0}),
    manifest("Instance", spec__stopSignal="SIGINT", spec__terminationGracePeriodSeconds=0),
    manifest(
        "Service",
        spec__ports=[
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "https", "port": 443, "targetPort": 8443},
        ],
    ),
    manifest(
        "Service", spec__healthCheck={"interval": "5s", "timeout": "5s"}, spec__circuitBreaker={}
    ),
    manifest("ScalePolicy", spec__minReplicas=0, spec__maxReplicas=1),
    manifest(
        "ScalePolicy",
        spec__metrics=[
            {"resource": "cpu", "target": {"averageUtilization": 150}},
            {"resource": "memory", "target": {"averageValue": "512Mi"}},
            {"resource": "http_requests_per_second", "target": {"averageValue": "100"}},
        ],
    ),
    manifest(
        "ScalePolicy",
        spec__schedules=[
            {"name": "night", "cron": "0 22 * * *", "maxReplicas": 0, "duration": "8h"}
        ],
    ),
    manifest(
        "Alert",
        spec__for="5m",
        spec__notify=[
            {"log": {}},
            {"webhook": {"url": "https://example.com/hook"}},
            {"command": {"command": ["logger", "hi"]}},
        ],
    ),
    manifest("Node", metadata={"name": "node-1.example.com"}),
    manifest("Event", metadata={"name": "web-0.17a2b3c4d5"}),
    manifest("Replica", spec__nodeName="node-1.example.com"),
]


@pytest.mark.parametrize("doc", GOOD, ids=lambda d: d["kind"])
def test_good_values_validate_and_round_trip(doc: dict[str, Any]) -> None:
    model = registry.kind_for(doc["apiVersion"], doc["kind"])
    obj = model.model_validate(doc)
    assert model.model_validate(obj.to_dict()) == obj


# Bad values: (manifest, field path, message). The path is where a CLI points the user.

BAD = [
    (
        manifest("Instance", spec__resources={"limits": {"memory": "64MB"}}),
        "spec.resources.limits.memory",
        'invalid quantity "64MB" (did you mean "64Mi"?)',
    ),
    (
        manifest("Instance", spec__resources={"limits": {"memory": "512Ki"}}),
        "spec.resources.limits.memory",
        "memory must be at least 1Mi",
    ),
    (
        manifest("Instance", spec__resources={"requests": {"cpu": "1.5.2"}}),
        "spec.resources.requests.cpu",
        'invalid quantity "1.5.2"',
    ),
    (
        manifest("Instance", spec__resources={"requests": {"cpu": "-1"}}),
        "spec.resources.requests.cpu",
        "cannot be negative",
    ),
    (
        manifest("Instance", spec__resources={"requests": {"cpu": "0"}}),
        "spec.resources.requests.cpu",
        "cpu must be at least 1m",
    ),
    (
        manifest("Instance", spec__resources={"requests": {"pids": 0}}),
        "spec.resources.requests.pids",
        "greater than or equal to 1",
    ),
    (
        manifest("Instance", spec__resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
        "spec.resources",
        "requests.cpu (2) must not exceed limits.cpu (1)",
    ),
    (
        manifest(
            "Instance", spec__resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}
        ),
        "spec.resources",
        "requests.memory (2Gi) must not exceed limits.memory (1Gi)",
    ),
    (
        manifest("Instance", spec__resources={"requests": {"pids": 20}, "limits": {"pids": 10}}),
        "spec.resources",
        "requests.pids (20) must not exceed limits.pids (10)",
    ),
    (manifest("Instance", spec__replicas=-1), "spec.replicas", "greater than or equal to 0"),
    (manifest("Instance", spec__replicas="3"), "spec.replicas", "valid integer"),
    (manifest("Instance", spec__replicas=True), "spec.replicas", "valid integer"),
    (manifest("Instance", spec__command=[]), "spec.command", "at least 1 item"),
    (manifest("Instance", spec__command=[""]), "spec", "command[0] must name a program"),
    (manifest("Instance", spec__command="sleep 1"), "spec.command", "valid list"),
    (
        manifest("Instance", spec__env=[{"name": "1BAD"}]),
        "spec.env.0.name",
        'invalid environment variable name "1BAD"',
    ),
    (
        manifest("Instance", spec__env=[{"name": "A"}, {"name": "A", "value": "2"}]),
        "spec",
        "env names must be unique: A appears more than once",
    ),
    (manifest("Instance", spec__workingDir="srv"), "spec.workingDir", 'invalid path "srv"'),
    (manifest("Instance", spec__user="Bad User"), "spec.user", 'invalid user "Bad User"'),
    (
        manifest("Instance", spec__isolation={"namespaces": ["pid", "user"]}),
        "spec.isolation.namespaces.1",
        "'pid', 'mount', 'uts', 'ipc', 'net' or 'cgroup'",
    ),
    (
        manifest("Instance", spec__isolation={"namespaces": []}),
        "spec.isolation.namespaces",
        "at least 1 item",
    ),
    (
        manifest("Instance", spec__isolation={"namespaces": ["pid", "pid"]}),
        "spec.isolation",
        "namespaces must be unique: pid",
    ),
    (
        manifest("Instance", spec__isolation={"namespaces": ["pid", "net"]}),
        "spec.isolation",
        '"net" contradicts network: host',
    ),
    (
        manifest("Instance", spec__isolation={"network": "bridge"}),
        "spec.isolation.network",
        "'host', 'none' or 'private'",
    ),
    (
        manifest("Instance", spec__isolation={"readOnlyPaths": ["usr"]}),
        "spec.isolation.readOnlyPaths.0",
        "absolute path",
    ),
    (
        manifest("Instance", spec__isolation={"capabilities": ["NET_ADMIN"]}),
        "spec.isolation.capabilities.0",
        'unknown capability "NET_ADMIN" (did you mean "CAP_NET_ADMIN"?)',
    ),
    (
        manifest("Instance", spec__isolation={"capabilities": ["CAP_FLY"]}),
        "spec.isolation.capabilities.0",
        'unknown capability "CAP_FLY"',
    ),
    (
        manifest("Instance", spec__isolation={"privateTmp": "yes"}),
        "spec.isolation.privateTmp",
        "valid boolean",
    ),
    (
        manifest("Instance", spec__ports=[{"name": "Http"}]),
        "spec.ports.0.name",
        'invalid port name "Http"',
    ),
    (
        manifest("Instance", spec__ports=[{"name": "a-very-long-port-name"}]),
        "spec.ports.0.name",
        "at most 15",
    ),
    (
        manifest("Instance", spec__ports=[{"name": "8080"}]),
        "spec.ports.0.name",
        "at least one letter",
    ),
    (
        manifest("Instance", spec__ports=[{"name": "http", "port": 0}]),
        "spec.ports.0.port",
        "greater than or equal to 1",
    ),
    (
        manifest("Instance", spec__ports=[{"name": "http", "port": 65536}]),
        "spec.ports.0.port",
        "less than or equal to 65535",
    ),
    (
        manifest("Instance", spec__ports=[{"name": "http", "protocol": "SCTP"}]),
        "spec.ports.0.protocol",
        "'TCP' or 'UDP'",
    ),
    (
        manifest("Instance", spec__ports=[{"name": "http"}, {"name": "http"}]),
        "spec",
        "ports names must be unique: http",
    ),
    (
        manifest("Instance", spec__ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
        "spec",
        "ports numbers must be unique: 80/TCP",
    ),
    (
        manifest("Instance", spec__restartPolicy="Sometimes"),
        "spec.restartPolicy",
        "'Always', 'OnFailure' or 'Never'",
    ),
    (
        manifest("Instance", spec__restartBackoff={"initial": "10m", "max": "1m"}),
        "spec.restartBackoff",
        "initial (10m) must not exceed max (1m)",
    ),
    (
        manifest("Instance", spec__restartBackoff={"initial": "0s"}),
        "spec.restartBackoff.initial",
        "greater than zero",
    ),
    (
        manifest("Instance", spec__restartBackoff={"max": "5"}),
        "spec.restartBackoff.max",
        'invalid duration "5"',
    ),
    (
        manifest("Instance", spec__readinessProbe={}),
        "spec.readinessProbe",
        "set exactly one of exec, tcpSocket or httpGet",
    ),
    (
        manifest(
            "Instance",
            spec__readinessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}},
        ),
        "spec.readinessProbe",
        "(found exec, tcpSocket)",
    ),
    (
        manifest("Instance", spec__readinessProbe={"tcpSocket": {"port": "http"}}),
        "spec",
        'readinessProbe: port "http" is not a name in ports',
    ),
    (
        manifest("Instance", spec__readinessProbe={"tcpSocket": {"port": 70000}}),
        "spec.readinessProbe.tcpSocket.port",
        "port 70000 is out of range",
    ),
    (
        manifest("Instance", spec__readinessProbe={"httpGet": {"port": 80, "path": "healthz"}}),
        "spec.readinessProbe.httpGet.path",
        "should match pattern",
    ),
    (
        manifest("Instance", spec__readinessProbe={"httpGet": {"port": 80, "scheme": "ftp"}}),
        "spec.readinessProbe.httpGet.scheme",
        "'http' or 'https'",
    ),
    (
        manifest(
            "Instance",
            spec__readinessProbe={"httpGet": {"port": 80, "headers": {"Bad Header": "x"}}},
        ),
        "spec.readinessProbe.httpGet.headers.Bad Header.[key]",
        "invalid HTTP header name",
    ),
    (
        manifest("Instance", spec__readinessProbe={"exec": {"command": []}}),
        "spec.readinessProbe.exec.command",
        "at least 1 item",
    ),
    (
        manifest(
            "Instance", spec__livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2}
        ),
        "spec",
        "livenessProbe.successThreshold must be 1",
    ),
    (
        manifest(
            "Instance", spec__startupProbe={"exec": {"command": ["true"]}, "periodSeconds": 0}
        ),
        "spec.startupProbe.periodSeconds",
        "greater than or equal to 1",
    ),
    (
        manifest("Instance", spec__terminationGracePeriodSeconds=-1),
        "spec.terminationGracePeriodSeconds",
        "greater than or equal to 0",
    ),
    (
        manifest("Instance", spec__stopSignal="TERM"),
        "spec.stopSignal",
        'invalid stop signal "TERM" (did you mean "SIGTERM"?)',
    ),
    (manifest("Instance", spec__stopSignal="SIGSEGV"), "spec.stopSignal", "use one of SIGTERM"),
    (
        manifest("Instance", spec__placement={"strategy": "Random"}),
        "spec.placement.strategy",
        "'Spread' or 'BinPack'",
    ),
    (
        manifest("Instance", spec__placement={"maxPerNode": 0}),
        "spec.placement.maxPerNode",
        "greater than or equal to 1",
    ),
    (
        manifest("Instance", spec__placement={"nodeSelector": {"-bad": "x"}}),
        "spec.placement.nodeSelector.-bad.[key]",
        "invalid key '-bad'",
    ),
    (
        manifest("Instance", spec__updateStrategy={"maxSurge": "150%"}),
        "spec.updateStrategy.maxSurge",
        'invalid value "150%"',
    ),
    (
        manifest("Instance", spec__updateStrategy={"maxUnavailable": -1}),
        "spec.updateStrategy.maxUnavailable",
        "percentage such as 25%",
    ),
    (
        manifest("Instance", spec__updateStrategy={"maxUnavailable": 0, "maxSurge": "0%"}),
        "spec.updateStrategy",
        "cannot both be 0",
    ),
    (
        manifest("Instance", spec__updateStrategy={"type": "BlueGreen"}),
        "spec.updateStrategy.type",
        "'RollingUpdate' or 'Recreate'",
    ),
    (manifest("Instance", spec__replica=3), "spec.replica", "Extra inputs are not permitted"),
    (manifest("Instance", metadata={"name": "Web"}), "metadata.name", "invalid name 'Web'"),
    (manifest("Instance", metadata={"name": "web.example"}), "", "invalid name 'web.example'"),
    (
        manifest("Instance", status={"replicas": -1}),
        "status.replicas",
        "greater than or equal to 0",
    ),
    (manifest("Service", spec__selector={}), "spec.selector", "at least 1 item"),
    (manifest("Service", spec__ports=[]), "spec.ports", "at least 1 item"),
    (
        manifest("Service", spec__ports=[{"name": "a", "port": 80}, {"name": "a", "port": 81}]),
        "spec",
        "ports names must be unique: a",
    ),
    (
        manifest("Service", spec__ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
        "spec",
        "ports numbers must be unique: 80/TCP",
    ),
    (
        manifest("Service", spec__ports=[{"name": "a", "port": 80, "targetPort": "No"}]),
        "spec.ports.0.targetPort",
        'invalid port name "No"',
    ),
    (
        manifest("Service", spec__ports=[{"name": "a", "port": 80, "targetPort": 1.5}]),
        "spec.ports.0.targetPort",
        "not float",
    ),
    (
        manifest("Service", spec__loadBalancing={"policy": "Fastest"}),
        "spec.loadBalancing.policy",
        "'RoundRobin', 'LeastConnections', 'Random' or 'SourceHash'",
    ),
    (
        manifest("Service", spec__healthCheck={"interval": "1s", "timeout": "2s"}),
        "spec.healthCheck",
        "timeout (2s) must not exceed interval (1s)",
    ),
    (
        manifest("Service", spec__healthCheck={"healthyThreshold": 0}),
        "spec.healthCheck.healthyThreshold",
        "greater than or equal to 1",
    ),
    (
        manifest("Service", spec__healthCheck={"httpPath": "health"}),
        "spec.healthCheck.httpPath",
        "should match pattern",
    ),
    (
        manifest("Service", spec__circuitBreaker={"ejectionTime": "soon"}),
        "spec.circuitBreaker.ejectionTime",
        'invalid duration "soon"',
    ),
    (
        manifest("ScalePolicy", spec__minReplicas=5, spec__maxReplicas=3),
        "spec",
        "minReplicas (5) must not exceed maxReplicas (3)",
    ),
    (
        manifest("ScalePolicy", spec__maxReplicas=0),
        "spec.maxReplicas",
        "greater than or equal to 1",
    ),
    (
        manifest("ScalePolicy", spec__minReplicas=-1),
        "spec.minReplicas",
        "greater than or equal to 0",
    ),
    (
        manifest("ScalePolicy", spec__targetRef={"kind": "Service", "name": "web"}),
        "spec.targetRef.kind",
        "'Instance'",
    ),
    (
        manifest("ScalePolicy", spec__targetRef={"name": "Web"}),
        "spec.targetRef.name",
        "invalid name 'Web'",
    ),
    (
        manifest("ScalePolicy", spec__metrics=[{"resource": "cpu", "target": {}}]),
        "spec.metrics.0.target",
        "set exactly one of averageUtilization or averageValue",
    ),
    (
        manifest(
            "ScalePolicy",
            spec__metrics=[
                {"resource": "cpu", "target": {"averageUtilization": 50, "averageValue": "1"}}
            ],
        ),
        "spec.metrics.0.target",
        "(found averageUtilization, averageValue)",
    ),
    (
        manifest(
            "ScalePolicy", spec__metrics=[{"resource": "cpu", "target": {"averageUtilization": 0}}]
        ),
        "spec.metrics.0.target.averageUtilization",
        "greater than or equal to 1",
    ),
    (
        manifest(
            "ScalePolicy", spec__metrics=[{"resource": "cpu", "target": {"averageValue": "64Mi"}}]
        ),
        "spec.metrics.0",
        "target.averageValue: invalid cpu quantity",
    ),
    (
        manifest(
            "ScalePolicy",
            spec__metrics=[{"resource": "memory", "target": {"averageValue": "64MB"}}],
        ),
        "spec.metrics.0.target.averageValue",
        'did you mean "64Mi"?',
    ),
    (
        manifest(
            "ScalePolicy",
            spec__metrics=[{"resource": "queue", "target": {"averageUtilization": 50}}],
        ),
        "spec.metrics.0",
        'custom metric "queue" takes target.averageValue',
    ),
    (
        manifest(
            "ScalePolicy",
            spec__metrics=[{"resource": "bad metric", "target": {"averageValue": "1"}}],
        ),
        "spec.metrics.0.resource",
        'invalid metric "bad metric"',
    ),
    (
        manifest(
            "ScalePolicy",
            spec__metrics=[{"resource": "cpu", "target": {"averageUtilization": 50}}] * 2,
        ),
        "spec",
        "metrics resources must be unique: cpu",
    ),
    (
        manifest(
            "ScalePolicy",
            spec__schedules=[{"name": "x", "cron": "0 8 * *", "minReplicas": 1, "duration": "1h"}],
        ),
        "spec.schedules.0.cron",
        "use 5 fields",
    ),
    (
        manifest(
            "ScalePolicy",
            spec__schedules=[
                {"name": "x", "cron": "61 8 * * *", "minReplicas": 1, "duration": "1h"}
            ],
        ),
        "spec.schedules.0.cron",
        'minute "61": "61" is not in 0-59',
    ),
    (
        manifest(
            "ScalePolicy", spec__schedules=[{"name": "x", "cron": "0 8 * * *", "duration": "1h"}]
        ),
        "spec.schedules.0",
        "set minReplicas, maxReplicas or both",
    ),
    (
        manifest(
            "ScalePolicy",
            spec__schedules=[
                {
                    "name": "x",
                    "cron": "0 8 * * *",
                    "minReplicas": 3,
                    "maxReplicas": 2,
                    "duration": "1h",
                }
            ],
        ),
        "spec.schedules.0",
        "minReplicas (3) must not exceed maxReplicas (2)",
    ),
    (
        manifest(
            "ScalePolicy", spec__schedules=[{"name": "x", "cron": "0 8 * * *", "minReplicas": 1}]
        ),
        "spec.schedules.0.duration",
        "Field required",
    ),
    (
        manifest(
            "ScalePolicy",
            spec__schedules=[{"name": "x", "cron": "@daily", "minReplicas": 1, "duration": "1h"}]
            * 2,
        ),
        "spec",
        "schedules names must be unique: x",
    ),
    (
        manifest("ScalePolicy", spec__behavior={"scaleDown": {"stabilizationWindowSeconds": 7200}}),
        "spec.behavior.scaleDown.stabilizationWindowSeconds",
        "less than or equal to 3600",
    ),
    (
        manifest("ScalePolicy", spec__behavior={"scaleUp": {"maxChangePerMinute": 0}}),
        "spec.behavior.scaleUp.maxChangePerMinute",
        "greater than or equal to 1",
    ),
    (manifest("Alert", spec__expr="  "), "spec.expr", "expr must not be empty"),
    (manifest("Alert", spec__for="5"), "spec.for", 'invalid duration "5"'),
    (
        manifest("Alert", spec__for=300),
        "spec.for",
        "not the bare number 300 (write 300s for seconds)",
    ),
    (manifest("Alert", spec__severity="page"), "spec.severity", "'critical', 'warning' or 'info'"),
    (
        manifest("Alert", spec__notify=[{}]),
        "spec.notify.0",
        "set exactly one of webhook, command or log",
    ),
    (
        manifest("Alert", spec__notify=[{"log": {}, "webhook": {"url": "http://x"}}]),
        "spec.notify.0",
        "(found webhook, log)",
    ),
    (
        manifest("Alert", spec__notify=[{"webhook": {"url": "ftp://x"}}]),
        "spec.notify.0.webhook.url",
        'invalid webhook url "ftp://x"',
    ),
    (
        manifest("Alert", spec__notify=[{"command": {"command": []}}]),
        "spec.notify.0.command.command",
        "at least 1 item",
    ),
    (
        manifest("Alert", spec__labels={"a": "b c"}),
        "spec.labels.a",
        "invalid label value 'b c'",
    ),
    (
        manifest("Alert", status={"state": "resolved"}),
        "status.state",
        "'inactive', 'pending' or 'firing'",
    ),
    (manifest("Alert", status={"value": float("inf")}), "status.value", "finite number"),
    (manifest("Replica", spec__ordinal=-1), "spec.ordinal", "greater than or equal to 0"),
    (manifest("Replica", spec__template={}), "spec.template.command", "Field required"),
    (
        manifest("Replica", spec__template={"command": ["x"], "replicas": 2}),
        "spec.template.replicas",
        "Extra inputs are not permitted",
    ),
    (
        manifest("Replica", status={"phase": "Crashed"}),
        "status.phase",
        "'Pending', 'Running', 'Succeeded', 'Failed' or 'Unknown'",
    ),
    (manifest("Replica", status={"restarts": -1}), "status.restarts", "greater than or equal to 0"),
    (
        manifest("Node", metadata={"name": "n", "namespace": "default"}),
        "",
        "Node is cluster-scoped",
    ),
    (manifest("Node", spec__unschedulable="no"), "spec.unschedulable", "valid boolean"),
    (
        manifest("Node", status={"capacity": {"memory": "100Ki"}}),
        "status.capacity.memory",
        "memory must be at least 1Mi",
    ),
    (
        manifest("Node", status={"addresses": [{"type": "Public", "address": "x"}]}),
        "status.addresses.0.type",
        "'InternalIP', 'ExternalIP' or 'Hostname'",
    ),
    (manifest("Event", type="Error"), "type", "'Normal' or 'Warning'"),
    (manifest("Event", count=0), "count", "greater than or equal to 1"),
    (manifest("Event", reason=""), "reason", "at least 1 character"),
    (manifest("Event", spec={}), "spec", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(
    ("doc", "loc", "message"), BAD, ids=lambda v: v if isinstance(v, str) else ""
)
def test_bad_values_are_rejected_with_path_and_message(
    doc: dict[str, Any], loc: str, message: str
) -> None:
    assert_rejected(doc, loc, message)


def test_kind_must_match_the_model() -> None:
    doc = manifest("Instance")
    doc["kind"] = "Instanse"
    with pytest.raises(ValidationError, match="Input should be 'Instance'"):
        Instance.model_validate(doc)


def test_alert_for_uses_the_alias_both_ways() -> None:
    alert = Alert.model_validate(manifest("Alert", spec__for="90s"))
    assert alert.spec.for_ == "90s"
    assert alert.to_dict()["spec"]["for"] == "90s"
    assert "for_" not in alert.model_dump_json()
    assert Alert.model_validate(alert.to_dict()) == alert


def test_alert_log_target_survives_pruning() -> None:
    # An empty `log: {}` would be pruned by to_dict; its default level keeps it present.
    alert = Alert.model_validate(manifest("Alert", spec__notify=[{"log": {}}]))
    assert alert.to_dict()["spec"]["notify"] == [{"log": {"level": "warning"}}]


def test_defaults_users_never_write() -> None:
    inst = Instance.model_validate(manifest("Instance"))
    spec = inst.spec
    assert (spec.replicas, spec.user, spec.restartPolicy, spec.stopSignal) == (
        1,
        "nobody",
        "Always",
        "SIGTERM",
    )
    assert spec.terminationGracePeriodSeconds == 30
    assert spec.isolation.namespaces == ["pid", "mount", "uts", "ipc"]
    assert (spec.isolation.network, spec.isolation.privateTmp, spec.isolation.noNewPrivileges) == (
        "host",
        True,
        True,
    )
    assert spec.isolation.capabilities == []
    assert (
        spec.restartBackoff.initial,
        spec.restartBackoff.max,
        spec.restartBackoff.resetAfter,
    ) == ("100ms", "5m", "10m")
    assert (
        spec.updateStrategy.type,
        spec.updateStrategy.maxUnavailable,
        spec.updateStrategy.maxSurge,
    ) == ("RollingUpdate", 1, 0)
    assert spec.placement.strategy == "Spread"
    assert inst.metadata.namespace == "default"
    assert inst.status.readyReplicas == 0
    sp = ScalePolicy.model_validate(manifest("ScalePolicy"))
    assert sp.spec.minReplicas == 1
    assert sp.spec.behavior.scaleUp.stabilizationWindowSeconds == 0
    assert sp.spec.behavior.scaleDown.stabilizationWindowSeconds == 300
    partial = ScalePolicy.model_validate(
        manifest("ScalePolicy", spec__behavior={"scaleDown": {"maxChangePerMinute": 2}})
    )
    assert partial.spec.behavior.scaleDown.stabilizationWindowSeconds == 300
    probe = Instance.model_validate(
        manifest("Instance", spec__readinessProbe={"exec": {"command": ["true"]}})
    ).spec.readinessProbe
    assert probe is not None
    assert (
        probe.initialDelaySeconds,
        probe.periodSeconds,
        probe.timeoutSeconds,
        probe.successThreshold,
        probe.failureThreshold,
    ) == (0, 10, 1, 1, 3)
    alert = Alert.model_validate(manifest("Alert"))
    assert (alert.spec.for_, alert.spec.severity, alert.status.state) == (
        "0s",
        "warning",
        "inactive",
    )


def test_replica_template_is_the_instance_template() -> None:
    inst = Instance.model_validate(manifest("Instance", spec__replicas=3, spec__args=["a"]))
    template = inst.spec.template()
    assert type(template) is ReplicaTemplate
    assert template.args == ["a"]
    replica = Replica.model_validate(manifest("Replica", spec__template=template.model_dump()))
    assert replica.spec.template == template
    assert inst.replica_labels() == {INSTANCE_LABEL: "web"}


@pytest.mark.parametrize(
    ("expression", "message"),
    [("* * * * *", ""), ("0 9 * * MON-FRI", ""), ("*/15 0-6 1,15 jan-mar sun", ""),
     ("@hourly", ""), ("0 0 * * 7", ""), ("* * * *", "found 4"), ("60 * * * *", 'minute "60"'),
     ("* 24 * * *", 'hour "24"'), ("* * 0 * *", 'day of month "0"'), ("* * * 13 *", 'month "13"'),
     ("* * * * 8", 'day of week "8"'), ("*/0 * * * *", 'step "0"'),
     ("5-1 * * * *", 'range "5-1" runs backwards'),
     ("* * * FOO *", '"FOO" is not in 1-12 or JAN-DEC'), ("@reboot", "use 5 fields")],
)  # fmt: skip
def test_cron(expression: str, message: str) -> None:
    if not message:
        assert validate_cron(expression) == expression
        return
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_cron(expression)


# The examples: every document parses, and round-trips through to_dict.


def load_examples() -> list[tuple[str, dict[str, Any]]]:
    yaml = YAML(typ="safe", pure=True)
    return [(path.name, doc) for path in EXAMPLES for doc in yaml.load_all(path.read_text()) if doc]


def test_examples_use_every_user_kind() -> None:
    app = [doc["kind"] for name, doc in load_examples() if name == "app.yaml"]
    assert sorted(app) == sorted(kind.KIND for kind in registry.USER_KINDS)
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize(
    ("name", "doc"),
    load_examples(),
    ids=lambda v: v if isinstance(v, str) else v["metadata"]["name"],
)
def test_examples_parse(name: str, doc: dict[str, Any]) -> None:
    obj = registry.kind_for(doc["apiVersion"], doc["kind"]).model_validate(doc)
    assert type(obj).model_validate(obj.to_dict()) == obj


# The registry.


@pytest.mark.parametrize(
    ("name", "kind"),
    [("Instance", Instance), ("instance", Instance), ("instances", Instance), ("inst", Instance),
     ("INST", Instance), ("svc", Service), ("Services", Service), ("sp", ScalePolicy),
     ("scalepolicies", ScalePolicy), ("ScalePolicy", ScalePolicy), ("alert", Alert),
     ("rep", Replica), ("replicas", Replica), ("no", Node), ("nodes", Node), ("ev", Event),
     ("Event", Event)],
)  # fmt: skip
def test_lookup(name: str, kind: type[Resource]) -> None:
    assert registry.lookup(name) is kind


def test_lookup_unknown_lists_valid_names() -> None:
    with pytest.raises(KeyError) as caught:
        registry.lookup("pods")
    assert isinstance(caught.value, registry.UnknownKind)
    assert str(caught.value).startswith('unknown kind "pods": valid names are alert, alerts, ev,')
    assert "inst" in str(caught.value)


def test_kind_for() -> None:
    assert registry.kind_for(V1, "Instance") is Instance
    with pytest.raises(registry.UnknownKind, match="not a Constellation kind"):
        registry.kind_for(["x"], {"a": 1})
    with pytest.raises(
        registry.UnknownKind, match=r"not a Constellation kind.*constellation convert"
    ):
        registry.kind_for("apps/v1", "Deployment")
    with pytest.raises(
        registry.UnknownKind, match=re.escape('unknown kind "instance" in constellation.dev/v1')
    ):
        registry.kind_for(V1, "instance")
    assert set(registry.USER_KINDS) | set(registry.SYSTEM_KINDS) == set(registry.ALL_KINDS)


def test_columns() -> None:
    inst = Instance.model_validate(
        manifest(
            "Instance",
            spec__replicas=3,
            status={"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        )
    )
    assert [c.header for c in registry.columns(Instance)] == ["READY", "UP-TO-DATE", "AVAILABLE"]
    assert registry.row(inst) == ["2/3", "3", "2"]
    assert registry.row(inst, wide=True)[3:] == [
        "sleep infinity",
        "RollingUpdate",
        f"{INSTANCE_LABEL}=web",
    ]
    svc = Service.model_validate(
        manifest(
            "Service",
            status={
                "endpoints": [
                    {
                        "replica": f"web-{i}",
                        "address": "127.0.0.1",
                        "ports": {"http": 8000 + i},
                        "ready": i != 1,
                    }
                    for i in range(6)
                ]
            },
        )
    )
    assert registry.row(svc) == ["127.0.0.1:8000,127.0.0.1:8002,127.0.0.1:8003 + 2 more..."]
    assert registry.row(Service.model_validate(manifest("Service"))) == ["<none>"]
    node = Node.model_validate(
        manifest(
            "Node",
            spec__unschedulable=True,
            status={"conditions": [{"type": "Ready", "status": "True"}]},
        )
    )
    assert registry.row(node) == ["Ready,SchedulingDisabled"]
    assert registry.row(Node.model_validate(manifest("Node"))) == ["Unknown"]
    event = Event.model_validate(manifest("Event", message="started web-0"))
    assert registry.row(event) == ["Normal", "Started", "instance/web", "started web-0"]
    replica = Replica.model_validate(manifest("Replica"))
    assert registry.row(replica) == ["0/1", "Pending", "<none>", "0"]
    waiting = replica.model_copy(deep=True)
    waiting.status.phase, waiting.status.reason = "Running", "CrashLoopBackOff"
    waiting.status.conditions = [Condition(type="Ready", status="False")]
    assert registry.row(waiting)[:2] == ["0/1", "CrashLoopBackOff"]  # the reason, as kubectl
    waiting.status.reason = None
    waiting.status.conditions = [Condition(type="Ready", status="True")]
    assert registry.row(waiting)[:2] == ["1/1", "Running"]
    sp = ScalePolicy.model_validate(manifest("ScalePolicy"))
    assert registry.row(sp) == ["Instance/web", "1", "3", "0"]
    assert registry.row(Alert.model_validate(manifest("Alert"))) == ["inactive", "warning"]
    for kind in registry.ALL_KINDS:  # every kind renders, wide too, from its minimal manifest
        obj = kind.model_validate(manifest(kind.KIND))
        assert all(isinstance(value, str) for value in registry.row(obj, wide=True))


# Properties: generated valid manifests round-trip; mutated ones are rejected cleanly.

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(strategies.any_manifest)
def test_valid_manifests_round_trip(doc: dict[str, Any]) -> None:
    model = registry.kind_for(doc["apiVersion"], doc["kind"])
    obj = model.model_validate(doc)
    assert model.model_validate(obj.to_dict()) == obj
    assert model.model_validate_json(obj.model_dump_json()) == obj


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in a manifest tree: (keys...) to each dict, list item and leaf."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


def at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@PROPERTY
@given(strategies.any_manifest, st.data())
def test_unknown_fields_are_rejected_anywhere(doc: dict[str, Any], data: st.DataObject) -> None:
    dicts = [p for p in paths(doc) if isinstance(at(doc, p), dict)]
    target = at(doc, data.draw(st.sampled_from(dicts)))
    # In a model the key is unknown; in a map (labels...) the value has the wrong type.
    target["bogusField"] = {"nested": True}
    with pytest.raises(ValidationError):
        registry.kind_for(doc["apiVersion"], doc["kind"]).model_validate(doc)


@PROPERTY
@given(strategies.any_manifest, st.data())
def test_wrongly_typed_leaves_are_rejected(doc: dict[str, Any], data: st.DataObject) -> None:
    leaves = [p for p in paths(doc) if p and not isinstance(at(doc, p), dict | list)]
    path = data.draw(st.sampled_from(leaves))
    model = registry.kind_for(doc["apiVersion"], doc["kind"])
    at(doc, path[:-1])[path[-1]] = data.draw(st.sampled_from([{"nested": True}, [[1]], [{"a": 1}]]))
    with pytest.raises(ValidationError):
        model.model_validate(doc)


# Known-bad values, applied to generated manifests of the kind they belong to.
MUTATIONS: list[tuple[str, tuple[str, ...], Any]] = [
    ("Instance", ("spec", "replicas"), -1),
    ("Instance", ("spec", "resources", "limits", "memory"), "64MB"),
    ("Instance", ("spec", "resources", "limits", "memory"), "512Ki"),
    ("Instance", ("spec", "resources", "requests", "cpu"), "1.5.2"),
    ("Instance", ("spec", "command"), []),
    ("Instance", ("spec", "stopSignal"), "SIGNOPE"),
    ("Instance", ("spec", "isolation", "namespaces"), ["pid", "pid"]),
    ("Instance", ("metadata", "name"), "Not_A_Name"),
    ("Service", ("spec", "selector"), {}),
    ("Service", ("spec", "loadBalancing", "policy"), "Fastest"),
    ("ScalePolicy", ("spec", "minReplicas"), 1000),
    ("ScalePolicy", ("spec", "maxReplicas"), 0),
    ("Alert", ("spec", "for"), "forever"),
    ("Alert", ("spec", "expr"), ""),
    ("Replica", ("spec", "ordinal"), -5),
    ("Node", ("metadata", "namespace"), "default"),
    ("Event", ("count",), 0),
]


@PROPERTY
@given(st.sampled_from(MUTATIONS), st.data())
def test_known_bad_values_are_rejected(
    mutation: tuple[str, tuple[str, ...], Any], data: st.DataObject
) -> None:
    kind, path, value = mutation
    doc = data.draw(strategies.BY_KIND[kind])
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    with pytest.raises(ValidationError):
        registry.kind_for(V1, kind).model_validate(doc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@PROPERTY
@given(strategies.any_manifest, st.data(), json_values)
def test_arbitrary_values_never_raise_anything_but_validation_errors(
    doc: dict[str, Any], data: st.DataObject, value: Any
) -> None:
    path = data.draw(st.sampled_from([p for p in paths(doc) if p]))
    model = registry.kind_for(doc["apiVersion"], doc["kind"])
    at(doc, path[:-1])[path[-1]] = value
    try:
        obj = model.model_validate(doc)
    except ValidationError:
        return
    assert type(obj).model_validate(obj.to_dict()) == obj


# The reference pages: every field of every kind is documented, and examples are real files.

DOCS = ROOT / "docs" / "kinds"
SHARED = {"ObjectMeta", "OwnerReference", "Condition"}  # documented once, in docs/kinds/README.md


def field_names(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    if model in seen or model.__name__ in SHARED:
        return set()
    seen.add(model)
    names = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        for sub in models_in(info.annotation):
            names |= field_names(sub, seen)
    return names


def models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in models_in(arg)]


@pytest.mark.parametrize("kind", registry.ALL_KINDS, ids=lambda k: k.KIND)
def test_every_field_is_documented(kind: type[Resource]) -> None:
    page = (DOCS / f"{kind.KIND.lower()}.md").read_text()
    # Words inside `code spans`: `{component, host}` documents both names.
    documented = {
        word for span in re.findall(r"`([^`]+)`", page) for word in re.findall(r"\w+", span)
    }
    # A Replica's template is the Instance's: instance.md documents those fields.
    skip: set[type[BaseModel]] = {ReplicaTemplate} if kind is Replica else set()
    fields = field_names(kind, skip) - {"apiVersion", "kind", "metadata", "spec", "status"}
    undocumented = sorted(fields - documented)
    assert not undocumented, f"docs/kinds/{kind.KIND.lower()}.md lacks {undocumented}"


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_docs_link_real_examples_and_paste_no_yaml(page: Path) -> None:
    text = page.read_text()
    assert "```yaml" not in text, "link an example in manifests/examples/ instead"
    links = re.findall(r"\]\(([^)#]+)\)", text)
    for link in links:
        assert (page.parent / link).resolve().exists(), f"{page.name}: broken link {link}"
    if page.name != "README.md":
        assert any("manifests/examples/" in link or link.endswith(".yaml") for link in links)
