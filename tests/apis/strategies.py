"""Hypothesis strategies for valid manifests of every kind, written from the models' fields.

Each strategy draws a plain dict, as a YAML loader would hand it over; the tests validate it,
so a valid draw that a model rejects is a bug in a validator (or here).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from constellation.apis.instance import CAPABILITIES, STOP_SIGNALS

Draw = st.DrawFn
Doc = dict[str, Any]

names = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
label_keys = st.from_regex(r"(example\.com/)?[a-z][a-z0-9._-]{0,8}[a-z0-9]", fullmatch=True)
label_values = st.from_regex(r"([A-Za-z0-9]([A-Za-z0-9._-]{0,8}[A-Za-z0-9])?)?", fullmatch=True)
labels = st.dictionaries(label_keys, label_values, max_size=3)
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
durations = st.builds(
    lambda n, unit: f"{n}{unit}", st.integers(1, 999), st.sampled_from(["ms", "s", "m", "h"])
)
timestamps = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))
abs_paths = st.from_regex(r"(/[a-z0-9._-]{1,8}){1,3}", fullmatch=True)
port_names = st.from_regex(r"[a-z]([a-z0-9]{0,5}(-[a-z0-9]{1,4})?)?", fullmatch=True)
counts = st.integers(0, 1000)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def compact(doc: Doc) -> Doc:
    """Leave out fields drawn as None, as a user leaves them out of a manifest."""
    return {key: value for key, value in doc.items() if value is not None}


def cpu_spelling(millis: int) -> str | int:
    if millis % 1000 == 0:
        return millis // 1000
    return f"{millis}m"


@st.composite
def resource_pair(draw: Draw) -> tuple[Doc, Doc]:
    """requests and limits, with every request at most its limit."""
    requests: Doc = {}
    limits: Doc = {}
    for name, low, high, spell in (
        ("cpu", 1, 64_000, cpu_spelling),
        ("memory", 1, 64 * 1024, lambda mib: f"{mib}Mi"),
        ("pids", 1, 100_000, lambda n: n),
    ):
        a, b = sorted(draw(st.lists(st.integers(low, high), min_size=2, max_size=2)))
        if draw(st.booleans()):
            requests[name] = spell(a)
        if draw(st.booleans()):
            limits[name] = spell(b)
    return requests, limits


@st.composite
def isolation(draw: Draw) -> Doc:
    namespaces = draw(
        st.lists(st.sampled_from(["pid", "mount", "uts", "ipc", "cgroup"]), min_size=1, unique=True)
    )
    network = draw(st.sampled_from(["host", "none", "private"]))
    if network != "host" and draw(st.booleans()):
        namespaces.append("net")
    return {
        "namespaces": namespaces,
        "network": network,
        "readOnlyPaths": draw(st.lists(abs_paths, max_size=3)),
        "privateTmp": draw(st.booleans()),
        "noNewPrivileges": draw(st.booleans()),
        "capabilities": draw(st.lists(st.sampled_from(CAPABILITIES), max_size=3, unique=True)),
    }


@st.composite
def probe(draw: Draw, port_refs: list[int | str], success: bool = True) -> Doc:
    action = draw(st.sampled_from(["exec", "tcpSocket", "httpGet"] if port_refs else ["exec"]))
    doc: Doc = {}
    if action == "exec":
        doc["exec"] = {"command": draw(st.lists(text, min_size=1, max_size=3))}
    elif action == "tcpSocket":
        doc["tcpSocket"] = {"port": draw(st.sampled_from(port_refs))}
    else:
        doc["httpGet"] = {
            "path": "/" + draw(st.from_regex(r"[a-z0-9/]{0,10}", fullmatch=True)),
            "port": draw(st.sampled_from(port_refs)),
            "scheme": draw(st.sampled_from(["http", "https"])),
            "headers": draw(
                st.dictionaries(st.from_regex(r"X-[A-Za-z]{1,8}", fullmatch=True), text, max_size=2)
            ),
        }
    doc["initialDelaySeconds"] = draw(st.integers(0, 600))
    doc["periodSeconds"] = draw(st.integers(1, 600))
    doc["timeoutSeconds"] = draw(st.integers(1, 60))
    doc["successThreshold"] = draw(st.integers(1, 10)) if success else 1
    doc["failureThreshold"] = draw(st.integers(1, 10))
    return doc


@st.composite
def template(draw: Draw) -> Doc:
    port_list = [
        compact({"name": name, "port": port, "protocol": draw(st.sampled_from(["TCP", "UDP"]))})
        for name, port in zip(
            draw(st.lists(port_names, max_size=3, unique=True)),
            draw(
                st.lists(
                    optional(st.integers(1, 65535)),
                    min_size=3,
                    max_size=3,
                    unique_by=lambda p: p or object(),
                )
            ),
            strict=False,
        )
    ]
    refs: list[int | str] = [p["name"] for p in port_list] + [8080]
    requests, limits = draw(resource_pair())
    doc: Doc = {
        "command": draw(st.lists(text.filter(bool), min_size=1, max_size=3)),
        "args": draw(st.lists(text, max_size=3)),
        "env": [
            {"name": name, "value": draw(text)}
            for name in draw(
                st.lists(
                    st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), max_size=3, unique=True
                )
            )
        ],
        "workingDir": draw(optional(abs_paths)),
        "user": draw(st.sampled_from(["nobody", "root", "1000", "1000:1000", "www-data"])),
        "resources": {"requests": requests, "limits": limits},
        "isolation": draw(isolation()),
        "ports": port_list,
        "restartPolicy": draw(st.sampled_from(["Always", "OnFailure", "Never"])),
        "restartBackoff": {
            "initial": "100ms",
            "max": draw(durations.filter(lambda d: not d.endswith("ms"))),
            "resetAfter": draw(durations),
        },
        "readinessProbe": draw(optional(probe(refs))),
        "livenessProbe": draw(optional(probe(refs, success=False))),
        "startupProbe": draw(optional(probe(refs, success=False))),
        "terminationGracePeriodSeconds": draw(st.integers(0, 3600)),
        "stopSignal": draw(st.sampled_from(STOP_SIGNALS)),
    }
    return compact(doc)


percent_or_int = st.integers(0, 10) | st.integers(0, 100).map(lambda n: f"{n}%")


def metadata(draw: Draw, namespaced: bool = True) -> Doc:
    return compact(
        {
            "name": draw(names),
            "namespace": draw(optional(names)) if namespaced else None,
            "labels": draw(labels),
            "annotations": draw(st.dictionaries(label_keys, text, max_size=2)),
            "uid": draw(optional(st.uuids().map(str))),
            "resourceVersion": draw(optional(st.integers(1, 10**9).map(str))),
            "generation": draw(optional(st.integers(1, 1000))),
            "creationTimestamp": draw(optional(timestamps)),
        }
    )


def conditions(draw: Draw) -> list[Doc]:
    return [
        compact(
            {
                "type": kind,
                "status": draw(st.sampled_from(["True", "False", "Unknown"])),
                "reason": draw(st.from_regex(r"[A-Z][A-Za-z]{0,10}", fullmatch=True)),
                "message": draw(text),
                "lastTransitionTime": draw(optional(timestamps)),
            }
        )
        for kind in draw(
            st.lists(st.sampled_from(["Ready", "Available", "Progressing"]), unique=True)
        )
    ]


@st.composite
def instances(draw: Draw) -> Doc:
    spec = draw(template())
    spec["replicas"] = draw(counts)
    spec["placement"] = compact(
        {
            "nodeSelector": draw(labels),
            "strategy": draw(st.sampled_from(["Spread", "BinPack"])),
            "maxPerNode": draw(optional(st.integers(1, 10))),
        }
    )
    surge = draw(percent_or_int)
    spec["updateStrategy"] = {
        "type": draw(st.sampled_from(["RollingUpdate", "Recreate"])),
        "maxUnavailable": draw(percent_or_int.filter(lambda v: v not in (0, "0%")))
        if surge in (0, "0%")
        else draw(percent_or_int),
        "maxSurge": surge,
    }
    status = {
        "replicas": draw(counts),
        "readyReplicas": draw(counts),
        "availableReplicas": draw(counts),
        "updatedReplicas": draw(counts),
        "observedGeneration": draw(optional(st.integers(1, 100))),
        "conditions": conditions(draw),
    }
    return {
        "apiVersion": "constellation.dev/v1",
        "kind": "Instance",
        "metadata": metadata(draw),
        "spec": spec,
        "status": compact(status),
    }


@st.composite
def services(draw: Draw) -> Doc:
    port_list = [
        compact(
            {
                "name": name,
                "port": number,
                "targetPort": draw(optional(st.integers(1, 65535) | port_names)),
                "protocol": draw(st.sampled_from(["TCP", "UDP"])),
            }
        )
        for name, number in zip(
            draw(st.lists(port_names, min_size=1, max_size=3, unique=True)),
            draw(st.lists(st.integers(1, 65535), min_size=3, max_size=3, unique=True)),
            strict=False,
        )
    ]
    spec = compact(
        {
            "selector": draw(st.dictionaries(label_keys, label_values, min_size=1, max_size=3)),
            "ports": port_list,
            "loadBalancing": {
                "policy": draw(
                    st.sampled_from(["RoundRobin", "LeastConnections", "Random", "SourceHash"])
                )
            },
            "healthCheck": draw(
                optional(
                    st.builds(
                        lambda t, h, u, p: compact(
                            {
                                "interval": "10s",
                                "timeout": t,
                                "healthyThreshold": h,
                                "unhealthyThreshold": u,
                                "httpPath": p,
                            }
                        ),
                        st.sampled_from(["1s", "500ms", "10s"]),
                        st.integers(1, 10),
                        st.integers(1, 10),
                        optional(st.just("/healthz")),
                    )
                )
            ),
            "circuitBreaker": draw(
                optional(
                    st.builds(
                        lambda a, b, c, d: {
                            "maxConnections": a,
                            "maxPendingRequests": b,
                            "consecutiveErrors": c,
                            "ejectionTime": d,
                        },
                        st.integers(1, 10**5),
                        st.integers(1, 10**5),
                        st.integers(1, 100),
                        durations,
                    )
                )
            ),
        }
    )
    endpoints = [
        compact(
            {
                "replica": f"{name}-0",
                "node": draw(optional(names)),
                "address": "127.0.0.1",
                "ports": {"http": draw(st.integers(1, 65535))},
                "ready": draw(st.booleans()),
            }
        )
        for name in draw(st.lists(names, max_size=3))
    ]
    return {
        "apiVersion": "constellation.dev/v1",
        "kind": "Service",
        "metadata": metadata(draw),
        "spec": spec,
        "status": {"endpoints": endpoints, "conditions": conditions(draw)},
    }


@st.composite
def metric(draw: Draw) -> Doc:
    resource = draw(st.sampled_from(["cpu", "memory", "pids", "queue_depth", "http:requests"]))
    if resource in ("cpu", "memory", "pids") and draw(st.booleans()):
        return {"resource": resource, "target": {"averageUtilization": draw(st.integers(1, 200))}}
    value = {"cpu": "500m", "memory": "64Mi"}.get(resource, str(draw(st.integers(1, 10**6))))
    return {"resource": resource, "target": {"averageValue": value}}


crons = st.sampled_from(
    [
        "0 8 * * MON-FRI",
        "*/5 * * * *",
        "0 0 1 JAN *",
        "30 2 * * 0,6",
        "@daily",
        "0-30/10 9-17 1-15 * 1-5",
    ]
)


@st.composite
def scalepolicies(draw: Draw) -> Doc:
    low, high = sorted(draw(st.lists(st.integers(0, 100), min_size=2, max_size=2)))
    schedules = []
    for name in draw(st.lists(names, max_size=2, unique=True)):
        a, b = sorted(draw(st.lists(st.integers(0, 50), min_size=2, max_size=2)))
        bounds = draw(st.sampled_from([(a, b), (a, None), (None, b)]))
        schedules.append(
            compact(
                {
                    "name": name,
                    "cron": draw(crons),
                    "minReplicas": bounds[0],
                    "maxReplicas": bounds[1],
                    "duration": draw(durations),
                }
            )
        )
    spec = {
        "targetRef": {"kind": "Instance", "name": draw(names)},
        "minReplicas": low,
        "maxReplicas": max(high, 1),
        "metrics": draw(st.lists(metric(), max_size=4, unique_by=lambda m: m["resource"])),
        "schedules": schedules,
        "behavior": {
            "scaleUp": compact(
                {
                    "stabilizationWindowSeconds": draw(st.integers(0, 3600)),
                    "maxChangePerMinute": draw(optional(st.integers(1, 100))),
                }
            ),
            "scaleDown": {"stabilizationWindowSeconds": draw(st.integers(0, 3600))},
        },
    }
    status = compact(
        {
            "currentReplicas": draw(counts),
            "desiredReplicas": draw(counts),
            "lastScaleTime": draw(optional(timestamps)),
            "currentMetrics": [
                {"resource": "cpu", "averageUtilization": draw(st.integers(0, 300))}
            ],
            "conditions": conditions(draw),
        }
    )
    return {
        "apiVersion": "constellation.dev/v1",
        "kind": "ScalePolicy",
        "metadata": metadata(draw),
        "spec": spec,
        "status": status,
    }


notify_targets = st.one_of(
    st.builds(
        lambda url: {"webhook": {"url": url}},
        st.sampled_from(["http://127.0.0.1:9093/x", "https://hooks.example.com/a?b=c"]),
    ),
    st.builds(
        lambda cmd: {"command": {"command": cmd}},
        st.lists(text.filter(bool), min_size=1, max_size=3),
    ),
    st.builds(
        lambda level: {"log": {"level": level}}, st.sampled_from(["info", "warning", "error"])
    ),
)


@st.composite
def alerts(draw: Draw) -> Doc:
    spec = {
        "expr": draw(text.filter(lambda s: bool(s.strip()))),
        "for": draw(durations | st.just("0s")),
        "severity": draw(st.sampled_from(["critical", "warning", "info"])),
        "labels": draw(labels),
        "annotations": draw(st.dictionaries(label_keys, text, max_size=2)),
        "notify": draw(st.lists(notify_targets, max_size=3)),
    }
    status = compact(
        {
            "state": draw(st.sampled_from(["inactive", "pending", "firing"])),
            "since": draw(optional(timestamps)),
            "value": draw(optional(st.floats(allow_nan=False, allow_infinity=False))),
            "lastEvaluation": draw(optional(timestamps)),
        }
    )
    return {
        "apiVersion": "constellation.dev/v1",
        "kind": "Alert",
        "metadata": metadata(draw),
        "spec": spec,
        "status": status,
    }


@st.composite
def replicas(draw: Draw) -> Doc:
    instance = draw(names)
    spec = compact(
        {
            "instanceName": instance,
            "ordinal": draw(st.integers(0, 1000)),
            "nodeName": draw(optional(names)),
            "template": draw(template()),
            "templateHash": draw(st.from_regex(r"[0-9a-f]{0,10}", fullmatch=True)),
        }
    )
    status = compact(
        {
            "phase": draw(
                st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"])
            ),
            "pid": draw(optional(st.integers(1, 2**22))),
            "nodeName": draw(optional(names)),
            "hostIP": draw(optional(st.ip_addresses().map(str))),
            "startedAt": draw(optional(timestamps)),
            "restarts": draw(counts),
            "exitCode": draw(optional(st.integers(-255, 255))),
            "reason": draw(optional(st.sampled_from(["OOMKilled", "CrashLoopBackOff", "Evicted"]))),
            "message": draw(optional(text)),
            "ports": draw(st.dictionaries(port_names, st.integers(1, 65535), max_size=2)),
            "conditions": conditions(draw),
        }
    )
    meta = metadata(draw)
    return {
        "apiVersion": "constellation.dev/v1",
        "kind": "Replica",
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


@st.composite
def nodes(draw: Draw) -> Doc:
    meta = metadata(draw, namespaced=False)
    meta["name"] = draw(st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,2}", fullmatch=True))
    capacity = {
        "cpu": draw(st.integers(1, 128)),
        "memory": f"{draw(st.integers(1, 1024))}Gi",
        "pids": draw(st.integers(1, 10**6)),
    }
    status = compact(
        {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "Hostname", "address": meta["name"]},
            ],
            "nodeInfo": {
                "kernelVersion": "6.1.0",
                "osImage": "Debian GNU/Linux 12",
                "cgroupVersion": draw(st.sampled_from(["v1", "v2"])),
                "agentVersion": "0.1.0",
            },
            "conditions": conditions(draw),
            "heartbeatTime": draw(optional(timestamps)),
        }
    )
    spec = compact(
        {"unschedulable": draw(st.booleans()), "leaseId": draw(optional(st.integers(1, 2**62)))}
    )
    return {
        "apiVersion": "constellation.dev/v1",
        "kind": "Node",
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


@st.composite
def events(draw: Draw) -> Doc:
    meta = metadata(draw)
    meta["name"] = draw(names) + "." + draw(st.from_regex(r"[0-9a-f]{8}", fullmatch=True))
    return compact(
        {
            "apiVersion": "constellation.dev/v1",
            "kind": "Event",
            "metadata": meta,
            "involvedObject": compact(
                {
                    "kind": draw(st.sampled_from(["Instance", "Replica", "Node"])),
                    "namespace": draw(optional(names)),
                    "name": draw(names),
                    "uid": draw(optional(st.uuids().map(str))),
                }
            ),
            "reason": draw(st.sampled_from(["Scheduled", "Started", "OOMKilled", "BackOff"])),
            "message": draw(text),
            "type": draw(st.sampled_from(["Normal", "Warning"])),
            "count": draw(st.integers(1, 1000)),
            "firstTimestamp": draw(optional(timestamps)),
            "lastTimestamp": draw(optional(timestamps)),
            "source": {
                "component": draw(st.sampled_from(["scheduler", "agent"])),
                "host": draw(names),
            },
        }
    )


BY_KIND: dict[str, st.SearchStrategy[Doc]] = {
    "Instance": instances(),
    "Service": services(),
    "ScalePolicy": scalepolicies(),
    "Alert": alerts(),
    "Replica": replicas(),
    "Node": nodes(),
    "Event": events(),
}
any_manifest = st.one_of(list(BY_KIND.values()))
