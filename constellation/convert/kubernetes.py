"""Kubernetes objects -> Instances, Services and ScalePolicies; other kinds are reported.

A pod template becomes one Instance per container (the Instance is the unit Constellation
schedules; there is no pod). Everything a workload says about its replicas (count, placement,
update strategy) goes on each of those Instances.
"""

from __future__ import annotations

import math
import re
from typing import Any

from constellation.apis.loader import Document, ManifestError
from constellation.apis.meta import API_VERSION
from constellation.convert import values
from constellation.convert.compose import placeholder
from constellation.convert.context import Context
from constellation.convert.mapping import APPROXIMATED, CONVERTED, DROPPED, IMAGE_NOTE, lookup, rule
from constellation.convert.report import ObjectReport, Path, Recorder

WORKLOADS = ("Deployment", "ReplicaSet", "ReplicationController", "StatefulSet", "DaemonSet")
_APPS = frozenset({"apps/v1", "apps/v1beta1", "apps/v1beta2", "extensions/v1beta1"})
API_VERSIONS: dict[str, frozenset[str]] = {
    "Deployment": _APPS,
    "ReplicaSet": _APPS,
    "DaemonSet": _APPS,
    "StatefulSet": _APPS,
    "ReplicationController": frozenset({"v1"}),
    "Pod": frozenset({"v1"}),
    "Service": frozenset({"v1"}),
    "HorizontalPodAutoscaler": frozenset(
        {"autoscaling/v1", "autoscaling/v2", "autoscaling/v2beta1", "autoscaling/v2beta2"}
    ),
    "PrometheusRule": frozenset({"monitoring.coreos.com/v1"}),
}
_API_VERSION = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$")
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def check_identity(document: Document) -> tuple[str, str]:
    """The object's apiVersion and kind, or a one-line error naming the line."""
    data = document.data
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ManifestError(
            f"{document.where(['kind'])}: kind: required field missing (a Kubernetes object "
            "needs apiVersion and kind)"
        )
    if not isinstance(api_version, str) or not api_version:
        raise ManifestError(f"{document.where(['apiVersion'])}: apiVersion: required for {kind}")
    known = API_VERSIONS.get(kind)
    if (known is not None and api_version not in known) or not _API_VERSION.match(api_version):
        expected = f" (use {', '.join(sorted(known))})" if known else ""
        raise ManifestError(
            f'{document.where(["apiVersion"])}: unknown apiVersion "{api_version}" for '
            f"{kind}{expected}"
        )
    return api_version, kind


def convert_kubernetes(document: Document, index: int, ctx: Context) -> None:
    _, kind = check_identity(document)
    data = document.data
    metadata = values.mapping(data.get("metadata"))
    name = metadata.get("name") if isinstance(metadata, dict) else None
    report = ObjectReport(document.source, index, document.line, (), f"{kind} {name or '?'}")
    ctx.conversion.objects.append(report)
    rec = Recorder(report, "k8s-meta")
    if not isinstance(name, str) or not name:
        rec.custom((), DROPPED, "metadata.name is missing: nothing to name the result")
        return
    if kind in WORKLOADS or kind == "Pod":
        _Workload(ctx, report, kind, data).convert()
    elif kind == "Service":
        _service(ctx, report, data)
    elif kind == "HorizontalPodAutoscaler":
        _hpa(ctx, report, data)
    else:
        found = lookup("k8s-kind", kind)
        assert found is not None
        rec.custom((), DROPPED, f"{kind}: {found.note}")
        return
    rec.sweep(metadata, ("metadata",))
    top_level(rec, data)
    rec.finish(data)


def top_level(rec: Recorder, data: dict[str, Any]) -> None:
    """apiVersion and kind say what the object is; status is observed state."""
    for key in data:
        if key in ("apiVersion", "kind"):
            rec.custom((key,), CONVERTED, f"{data['kind']}: recognised")
        elif key == "status":
            rec.note((key,), "status", section="k8s-workload")
    rec.sweep(data, ())


def object_meta(rec: Recorder, data: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """name, namespace, labels and annotations of a Kubernetes object, noted."""
    metadata = data.get("metadata", {})
    result: dict[str, Any] = {"name": values.dns_label(name or str(metadata["name"]))}
    if result["name"] != metadata["name"] and name is None:
        rec.note(("metadata", "name"), "name", APPROXIMATED, f"named {result['name']}", "k8s-meta")
    elif name is None:
        rec.note(("metadata", "name"), "name", section="k8s-meta")
    namespace = metadata.get("namespace")
    if isinstance(namespace, str):
        result["namespace"] = values.dns_label(namespace)
        rec.note(("metadata", "namespace"), "namespace", section="k8s-meta")
    result["labels"] = _labels(rec, metadata.get("labels"), ("metadata", "labels"), "k8s-meta")
    result["annotations"] = _annotations(
        rec, metadata.get("annotations"), ("metadata", "annotations"), "k8s-meta"
    )
    return result


def _labels(
    rec: Recorder, raw: Any, path: Path, section: str, rule: str = "labels"
) -> dict[str, str]:
    labels: dict[str, str] = {}
    for key, value in (raw or {}).items() if isinstance(raw, dict) else ():
        text = values.text(value) if not isinstance(value, dict | list) else ""
        if values.is_label(str(key), text):
            labels[str(key)] = text
            rec.note((*path, key), rule, section=section)
        else:
            rec.note((*path, key), rule, DROPPED, f"{key}: {text!r} is not a valid label", section)
    return labels


def _annotations(
    rec: Recorder, raw: Any, path: Path, section: str, rule: str = "annotations"
) -> dict[str, str]:
    annotations: dict[str, str] = {}
    for key, value in (raw or {}).items() if isinstance(raw, dict) else ():
        if values.is_annotation_key(str(key)) and not isinstance(value, dict | list):
            annotations[str(key)] = values.text(value)
            rec.note((*path, key), rule, section=section)
        else:
            rec.note((*path, key), rule, DROPPED, f"{key}: not a valid annotation", section)
    return annotations


def _clean(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in metadata.items() if value not in ({}, None)}


# -- workloads and pods -----------------------------------------------------------------------


class _Workload:
    """A Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController or Pod."""

    def __init__(self, ctx: Context, report: ObjectReport, kind: str, data: dict[str, Any]) -> None:
        self.ctx, self.report, self.kind, self.data = ctx, report, kind, data
        self.rec = Recorder(report, "k8s-workload")
        spec = data.get("spec")
        self.spec: dict[str, Any] = spec if isinstance(spec, dict) else {}
        self.pod_path: Path = ("spec",)
        self.pod, self.template_meta = self.spec, {}
        if kind != "Pod":
            template = values.mapping(self.spec.get("template"))
            pod = values.mapping(template.get("spec"))
            meta = values.mapping(template.get("metadata"))
            self.pod, self.pod_path, self.template_meta = pod, ("spec", "template", "spec"), meta

    def convert(self) -> None:
        metadata = object_meta(self.rec, self.data)
        common: dict[str, Any] = {}
        if self.kind != "Pod":
            common = self._workload_spec(metadata)
        pod = _Pod(self.rec, self.pod, self.pod_path)
        common.update(pod.shared())
        containers = self.pod.get("containers")
        if not isinstance(containers, list) or not containers:
            self.rec.custom(self.pod_path, DROPPED, "no containers: nothing to run")
            return
        several = len(containers) > 1
        if several:
            self.rec.custom(
                None,
                APPROXIMATED,
                f"a pod of {len(containers)} containers became {len(containers)} Instances: "
                "they no longer share localhost, volumes or a lifecycle, and are scheduled "
                "independently",
            )
        for index, container in enumerate(containers):
            path = (*self.pod_path, "containers", index)
            if not isinstance(container, dict):
                self.rec.custom(path, DROPPED, "a container must be a mapping")
                continue
            name = metadata["name"]
            if several:
                name = values.dns_label(f"{name}-{container.get('name', index)}")
            template = _Container(self.rec, container, path, pod.user).convert(name)
            spec = {
                **common,
                **template,
                "isolation": {**pod.isolation, **template.get("isolation", {})},
            }
            if not spec["isolation"]:
                del spec["isolation"]
            instance = {
                "apiVersion": API_VERSION,
                "kind": "Instance",
                "metadata": _clean({**metadata, "name": name}),
                "spec": spec,
            }
            self.ctx.emit(self.report, instance, f"{self.kind}/{metadata['name']}")
        self.rec.sweep(self.pod, self.pod_path, section="k8s-pod")
        if self.kind != "Pod":
            self.rec.sweep(self.spec, ("spec",))

    def _workload_spec(self, metadata: dict[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        labels = _labels(
            self.rec,
            self.template_meta.get("labels"),
            ("spec", "template", "metadata", "labels"),
            "k8s-workload",
            "template.metadata.labels",
        )
        metadata["labels"] = {**metadata["labels"], **labels}
        annotations = _annotations(
            self.rec,
            self.template_meta.get("annotations"),
            ("spec", "template", "metadata", "annotations"),
            "k8s-workload",
            "template.metadata.annotations",
        )
        metadata["annotations"] = {**metadata["annotations"], **annotations}
        self.rec.sweep(self.template_meta, ("spec", "template", "metadata"), "template.metadata.")
        replicas = self.spec.get("replicas")
        if self.kind == "DaemonSet":
            spec["replicas"], spec["placement"] = 1, {"maxPerNode": 1}
            self.rec.note(("spec", "selector"), "selector")
            self.rec.custom(None, APPROXIMATED, rule("k8s-workload", "placement").note)
        elif isinstance(replicas, int) and not isinstance(replicas, bool) and replicas >= 0:
            spec["replicas"] = replicas
            self.rec.note(("spec", "replicas"), "replicas")
        spec.update(self._strategy())
        return spec

    def _strategy(self) -> dict[str, Any]:
        key = "strategy" if self.kind == "Deployment" else "updateStrategy"
        raw = self.spec.get(key)
        if not isinstance(raw, dict):
            return {}
        path: Path = ("spec", key)
        result: dict[str, Any] = {}
        kind = raw.get("type")
        if kind in ("RollingUpdate", "Recreate"):
            result["type"] = kind
            self.rec.note((*path, "type"), f"{key}.type")
        elif kind == "OnDelete":
            result["type"] = "RollingUpdate"
            self.rec.note((*path, "type"), f"{key}.type", APPROXIMATED, "OnDelete: RollingUpdate")
        rolling = raw.get("rollingUpdate")
        if isinstance(rolling, dict) and result.get("type", "RollingUpdate") == "RollingUpdate":
            for field in ("maxSurge", "maxUnavailable"):
                if field in rolling:
                    result[field] = rolling[field]
                    self.rec.note((*path, "rollingUpdate", field), f"{key}.rollingUpdate.{field}")
            if result.get("maxSurge") in (0, "0%") and result.get("maxUnavailable") in (
                None,
                0,
                "0%",
            ):
                result["maxUnavailable"] = 1
        self.rec.sweep(rolling, (*path, "rollingUpdate"), f"{key}.rollingUpdate.")
        return {"updateStrategy": result} if result else {}


class _Pod:
    """What a pod spec says for all its containers: node selection, namespaces, user."""

    def __init__(self, rec: Recorder, pod: dict[str, Any], path: Path) -> None:
        self.rec, self.pod, self.path = rec, pod, path
        self.isolation: dict[str, Any] = {}
        self.user: str | None = None

    def shared(self) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        selector = self.pod.get("nodeSelector")
        if isinstance(selector, dict):
            labels = _labels(
                self.rec, selector, (*self.path, "nodeSelector"), "k8s-pod", "nodeSelector"
            )
            if labels:
                spec.setdefault("placement", {})["nodeSelector"] = labels
        policy = self.pod.get("restartPolicy")
        if policy in ("Always", "OnFailure", "Never"):
            spec["restartPolicy"] = policy
            self._note("restartPolicy")
        grace = self.pod.get("terminationGracePeriodSeconds")
        if isinstance(grace, int) and not isinstance(grace, bool) and grace >= 0:
            spec["terminationGracePeriodSeconds"] = grace
            self._note("terminationGracePeriodSeconds")
        self._namespaces()
        self.user = _user(
            self.rec, self.pod.get("securityContext"), (*self.path, "securityContext"), "k8s-pod"
        )
        return spec

    def _note(self, field: str, status: Any = None, detail: str | None = None) -> None:
        self.rec.note((*self.path, field), field, status, detail, "k8s-pod")

    def _namespaces(self) -> None:
        namespaces = ["pid", "mount", "uts", "ipc"]
        for field, namespace in (("hostPID", "pid"), ("hostIPC", "ipc")):
            if self.pod.get(field) is True:
                namespaces.remove(namespace)
            if field in self.pod:
                self._note(field)
        if namespaces != ["pid", "mount", "uts", "ipc"]:
            self.isolation["namespaces"] = namespaces
        if "hostNetwork" in self.pod:
            self._note("hostNetwork")


def _user(rec: Recorder, context: Any, path: Path, section: str) -> str | None:
    """runAsUser[:runAsGroup] from a securityContext, noted."""
    if not isinstance(context, dict):
        return None
    uid, gid = context.get("runAsUser"), context.get("runAsGroup")
    for field in ("runAsUser", "runAsGroup", "runAsNonRoot"):
        if field in context:
            rec.note((*path, field), f"securityContext.{field}", section=section)
    prefix = "securityContext."
    if isinstance(uid, int) and not isinstance(uid, bool):
        return f"{uid}:{gid}" if isinstance(gid, int) and not isinstance(gid, bool) else str(uid)
    if isinstance(gid, int) and not isinstance(gid, bool):
        rec.note(
            (*path, "runAsGroup"), f"{prefix}runAsGroup", DROPPED, "a group needs a user", section
        )
    return None


class _Container:
    """One container -> the template fields of an Instance spec."""

    def __init__(
        self, rec: Recorder, container: dict[str, Any], path: Path, pod_user: str | None
    ) -> None:
        self.rec, self.c, self.path, self.pod_user = rec, container, path, pod_user
        self.spec: dict[str, Any] = {}
        self.port_names: dict[str, str] = {}

    def note(
        self, field: str, status: Any = None, detail: str | None = None, path: Path | None = None
    ) -> None:
        self.rec.note(path or (*self.path, field), field, status, detail, "k8s-container")

    def convert(self, name: str) -> dict[str, Any]:
        if "name" in self.c:
            self.note("name")
        self._command(name)
        self._env()
        self._ports()
        self._resources()
        for probe in _PROBES:
            if isinstance(self.c.get(probe), dict):
                converted = _probe(self.rec, self.c[probe], (*self.path, probe), self.port_names)
                if converted is not None:
                    self.spec[probe] = converted
                    self.note(probe)
        self._security()
        working = self.c.get("workingDir")
        if isinstance(working, str) and working.startswith("/"):
            self.spec["workingDir"] = working
            self.note("workingDir")
        self.rec.sweep(self.c, self.path, section="k8s-container")
        return self.spec

    def _command(self, name: str) -> None:
        command, args = self._words("command"), self._words("args")
        image = self.c.get("image")
        if command:
            self._run(command, args)
            self.note("command")
            if "image" in self.c:
                self.note("image", detail=IMAGE_NOTE)
            if args:
                self.note("args")
            return
        what = f"image {image}" if isinstance(image, str) else f"container {name}"
        self._run(placeholder(what), args)
        if args:
            self.note(
                "args",
                APPROXIMATED,
                "arguments for the image's entrypoint: kept after a placeholder command",
            )
        if "image" in self.c:
            self.note(
                "image",
                DROPPED,
                "no command: the image's entrypoint is unknown here; spec.command is a "
                "placeholder that fails saying so: set it",
            )

    def _run(self, command: list[str], args: list[str] | None) -> None:
        self.spec["command"] = command
        if args:
            self.spec["args"] = args

    def _words(self, field: str) -> list[str] | None:
        raw = self.c.get(field)
        if raw is None:
            return None
        try:
            return [values.text(item) for item in raw] if isinstance(raw, list) else None
        except ValueError as error:
            self.note(field, DROPPED, str(error))
            return None

    def _env(self) -> None:
        env = self.c.get("env")
        result: dict[str, str] = {}
        for index, entry in enumerate(env if isinstance(env, list) else []):
            path = (*self.path, "env", index)
            if not isinstance(entry, dict):
                self.note("env", DROPPED, "an env entry must be a mapping", path)
                continue
            name = str(entry.get("name"))
            try:
                values.env_name(name)
            except ValueError as error:
                self.note("env", DROPPED, str(error), path)
                continue
            if "valueFrom" in entry:
                self.rec.note(path, "env.valueFrom", section="k8s-container")
                continue
            result[name] = values.text(entry.get("value", ""))
            self.note("env", path=path)
        if result:
            self.spec["env"] = [{"name": key, "value": value} for key, value in result.items()]

    def _ports(self) -> None:
        ports = self.c.get("ports")
        result = []
        seen: set[tuple[int, str]] = set()
        for index, entry in enumerate(ports if isinstance(ports, list) else []):
            path = (*self.path, "ports", index)
            converted = self._port(entry, path)
            if converted is not None and (converted["port"], converted["protocol"]) not in seen:
                seen.add((converted["port"], converted["protocol"]))
                result.append(converted)
        if result:
            self.spec["ports"] = result

    def _port(self, entry: Any, path: Path) -> dict[str, Any] | None:
        if not isinstance(entry, dict):
            self.rec.custom(path, DROPPED, "a port must be a mapping")
            return None
        protocol = str(entry.get("protocol", "TCP"))
        try:
            number = values.port_number(entry.get("containerPort"))
        except ValueError as error:
            self.rec.note(
                (*path, "containerPort"),
                "ports.containerPort",
                DROPPED,
                str(error),
                "k8s-container",
            )
            return None
        if protocol not in ("TCP", "UDP"):
            self.rec.note(
                (*path, "protocol"),
                "ports.protocol",
                DROPPED,
                f"{protocol} is not supported",
                "k8s-container",
            )
            return None
        name = values.port_label(protocol, number, entry.get("name"))
        if isinstance(entry.get("name"), str):
            self.port_names[entry["name"]] = name
        for field in ("containerPort", "name", "protocol", "hostPort", "hostIP"):
            if field in entry:
                self.rec.note((*path, field), f"ports.{field}", section="k8s-container")
        self.rec.sweep(entry, path, "ports.", "k8s-container")
        return {"name": name, "port": number, "protocol": protocol}

    def _resources(self) -> None:
        raw = self.c.get("resources")
        if not isinstance(raw, dict):
            return
        resources: dict[str, Any] = {}
        for side in ("requests", "limits"):
            amounts = raw.get(side)
            for key, value in (amounts or {}).items() if isinstance(amounts, dict) else ():
                path = (*self.path, "resources", side, key)
                if key in ("cpu", "memory"):
                    resources.setdefault(side, {})[key] = value
                    self.rec.note(path, f"resources.{side}.{key}", section="k8s-container")
        if resources:
            self.spec["resources"] = _consistent(resources)
        self.rec.sweep(raw, (*self.path, "resources"), "resources.", "k8s-container")
        for side in ("requests", "limits"):
            self.rec.sweep(
                raw.get(side),
                (*self.path, "resources", side),
                f"resources.{side}.",
                "k8s-container",
            )

    def _security(self) -> None:
        context = self.c.get("securityContext")
        path = (*self.path, "securityContext")
        user = _user(self.rec, context, path, "k8s-container") or self.pod_user
        if user is not None:
            self.spec["user"] = user
        if not isinstance(context, dict):
            return
        isolation: dict[str, Any] = {}
        capabilities = context.get("capabilities")
        if isinstance(capabilities, dict):
            added = []
            for index, name in enumerate(capabilities.get("add") or []):
                here = (*path, "capabilities", "add", index)
                try:
                    added.append(values.capability(str(name)))
                    self.note("securityContext.capabilities.add", path=here)
                except ValueError as error:
                    self.note("securityContext.capabilities.add", DROPPED, str(error), here)
            if added:
                isolation["capabilities"] = list(dict.fromkeys(added))
            self.rec.sweep(
                capabilities,
                (*path, "capabilities"),
                "securityContext.capabilities.",
                "k8s-container",
            )
        if isinstance(context.get("allowPrivilegeEscalation"), bool):
            isolation["noNewPrivileges"] = not context["allowPrivilegeEscalation"]
            self.note(
                "securityContext.allowPrivilegeEscalation", path=(*path, "allowPrivilegeEscalation")
            )
        if context.get("readOnlyRootFilesystem") is True:
            isolation["readOnlyPaths"] = ["/"]
        if "readOnlyRootFilesystem" in context:
            status = None if context["readOnlyRootFilesystem"] is True else CONVERTED
            self.note(
                "securityContext.readOnlyRootFilesystem",
                status,
                None if status is None else "false: writable",
                (*path, "readOnlyRootFilesystem"),
            )
        if isolation:
            self.spec["isolation"] = isolation
        self.rec.sweep(context, path, "securityContext.", "k8s-container")


def _consistent(resources: dict[str, Any]) -> dict[str, Any]:
    """Kubernetes fills a missing request from its limit; so do we, so requests never exceed
    limits because only one side was given."""
    requests, limits = resources.get("requests", {}), resources.get("limits", {})
    for key, limit in limits.items():
        requests.setdefault(key, limit)
    if requests:
        resources["requests"] = requests
    return resources


def _probe(
    rec: Recorder, raw: dict[str, Any], path: Path, port_names: dict[str, str]
) -> dict[str, Any] | None:
    probe: dict[str, Any] = {}

    def note(field: str, status: Any = None, detail: str | None = None) -> None:
        rec.note((*path, *field.split(".")), field, status, detail, "k8s-probe")

    if "grpc" in raw:
        note("grpc")
    action = _probe_action(raw, port_names, note)
    if action is None:
        rec.sweep(raw, path, "", "k8s-probe")
        rec.custom(path, DROPPED, "no exec, httpGet or tcpSocket action: the probe is dropped")
        return None
    probe.update(action)
    for field in (
        "initialDelaySeconds",
        "periodSeconds",
        "timeoutSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        value = raw.get(field)
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= (0 if field == "initialDelaySeconds" else 1)
        ):
            probe[field] = value
            note(field)
    if path[-1] != "readinessProbe" and probe.get("successThreshold", 1) != 1:
        probe["successThreshold"] = 1
        note("successThreshold", APPROXIMATED, "must be 1 for liveness and startup probes")
    rec.sweep(raw, path, "", "k8s-probe")
    for key in ("exec", "httpGet", "tcpSocket"):
        rec.sweep(raw.get(key), (*path, key), f"{key}.", "k8s-probe")
    return probe


def _probe_action(
    raw: dict[str, Any], port_names: dict[str, str], note: Any
) -> dict[str, Any] | None:
    if isinstance(raw.get("exec"), dict) and isinstance(raw["exec"].get("command"), list):
        note("exec.command")
        return {"exec": {"command": [values.text(word) for word in raw["exec"]["command"]]}}
    for key in ("httpGet", "tcpSocket"):
        action = raw.get(key)
        if not isinstance(action, dict):
            continue
        port = action.get("port")
        port = port_names.get(port, port) if isinstance(port, str) else port
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        result: dict[str, Any] = {"port": port}
        note(f"{key}.port")
        if key == "httpGet":
            result.update(_http_get(action, note))
        for field in ("host",):
            if field in action:
                note(f"{key}.{field}")
        return {key: result}
    return None


def _http_get(action: dict[str, Any], note: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if isinstance(action.get("path"), str) and action["path"].startswith("/"):
        result["path"] = action["path"]
        note("httpGet.path")
    scheme = str(action.get("scheme", "HTTP")).lower()
    if scheme in ("http", "https"):
        result["scheme"] = scheme
        if "scheme" in action:
            note("httpGet.scheme")
    headers = action.get("httpHeaders")
    if isinstance(headers, list):
        result["headers"] = {
            str(h.get("name")): values.text(h.get("value")) for h in headers if isinstance(h, dict)
        }
        note("httpGet.httpHeaders")
    return result


# -- Service ------------------------------------------------------------------------------------


def _service(ctx: Context, report: ObjectReport, data: dict[str, Any]) -> None:
    rec = Recorder(report, "k8s-service")
    raw = data.get("spec")
    spec: dict[str, Any] = raw if isinstance(raw, dict) else {}
    metadata = object_meta(rec, data)
    selector = _labels(rec, spec.get("selector"), ("spec", "selector"), "k8s-service", "selector")
    if not selector:
        rec.custom(
            ("spec",),
            DROPPED,
            "no selector: a Constellation Service needs one (no manual endpoints)",
        )
        return
    ports: list[dict[str, Any]] = []
    for index, entry in enumerate(values.sequence(spec.get("ports"))):
        converted = _service_port(rec, entry, ("spec", "ports", index))
        if converted is not None and all(p["name"] != converted["name"] for p in ports):
            ports.append(converted)
    if not ports:
        rec.custom(("spec",), DROPPED, "no ports: a Constellation Service needs one")
        return
    result: dict[str, Any] = {"selector": selector, "ports": ports}
    kind = spec.get("type", "ClusterIP")
    if "type" in spec:
        status = CONVERTED if kind == "ClusterIP" else APPROXIMATED
        rec.note(("spec", "type"), "type", status, f"{kind}: one address per port, on the Service")
    if spec.get("clusterIP") == "None":
        rec.note(("spec", "clusterIP"), "clusterIP", detail="headless: a Service with an address")
    if spec.get("sessionAffinity") == "ClientIP":
        result["loadBalancing"] = {"policy": "SourceHash"}
    rec.sweep(spec, ("spec",))
    service = {
        "apiVersion": API_VERSION,
        "kind": "Service",
        "metadata": _clean(metadata),
        "spec": result,
    }
    ctx.emit(report, service, f"Service/{metadata['name']}")


def _service_port(rec: Recorder, entry: Any, path: Path) -> dict[str, Any] | None:
    if not isinstance(entry, dict):
        rec.custom(path, DROPPED, "a port must be a mapping")
        return None
    protocol = str(entry.get("protocol", "TCP"))
    try:
        number = values.port_number(entry.get("port"))
    except ValueError as error:
        rec.note((*path, "port"), "ports.port", DROPPED, str(error))
        return None
    if protocol not in ("TCP", "UDP"):
        rec.note((*path, "protocol"), "ports.protocol", DROPPED, f"{protocol} is not supported")
        return None
    result: dict[str, Any] = {
        "name": values.port_label(protocol, number, entry.get("name")),
        "port": number,
        "protocol": protocol,
    }
    target = entry.get("targetPort")
    if isinstance(target, str) and target.isdigit():
        target = int(target)
    if target is not None:
        result["targetPort"] = (
            values.port_label(protocol, 0, target) if isinstance(target, str) else target
        )
    for field in ("port", "targetPort", "name", "protocol"):
        if field in entry:
            rec.note((*path, field), f"ports.{field}")
    rec.sweep(entry, path, "ports.")
    return result


# -- HorizontalPodAutoscaler ----------------------------------------------------------------------


def _hpa(ctx: Context, report: ObjectReport, data: dict[str, Any]) -> None:
    rec = Recorder(report, "k8s-hpa")
    raw = data.get("spec")
    spec: dict[str, Any] = raw if isinstance(raw, dict) else {}
    metadata = object_meta(rec, data)
    target = spec.get("scaleTargetRef")
    if (
        not isinstance(target, dict)
        or target.get("kind") not in WORKLOADS
        or not target.get("name")
    ):
        rec.custom(
            ("spec",),
            DROPPED,
            "scaleTargetRef must name a Deployment, StatefulSet, ReplicaSet or "
            "ReplicationController",
        )
        return
    rec.note(("spec", "scaleTargetRef"), "scaleTargetRef")
    result: dict[str, Any] = {
        "targetRef": {"kind": "Instance", "name": values.dns_label(str(target["name"]))}
    }
    for field in ("minReplicas", "maxReplicas"):
        value = spec.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            result[field] = value
            rec.note(("spec", field), field)
    cpu = spec.get("targetCPUUtilizationPercentage")
    metrics = []
    if isinstance(cpu, int) and not isinstance(cpu, bool) and cpu >= 1:
        metrics.append({"resource": "cpu", "target": {"averageUtilization": cpu}})
        rec.note(("spec", "targetCPUUtilizationPercentage"), "targetCPUUtilizationPercentage")
    for index, metric in enumerate(spec.get("metrics") or []):
        converted = _hpa_metric(rec, metric, ("spec", "metrics", index))
        if converted is not None and all(m["resource"] != converted["resource"] for m in metrics):
            metrics.append(converted)
    if metrics:
        result["metrics"] = metrics
    behavior = _behavior(rec, spec.get("behavior"))
    if behavior:
        result["behavior"] = behavior
    rec.sweep(spec, ("spec",))
    policy = {
        "apiVersion": API_VERSION,
        "kind": "ScalePolicy",
        "metadata": _clean(metadata),
        "spec": result,
    }
    ctx.emit(report, policy, f"HorizontalPodAutoscaler/{metadata['name']}")


def _hpa_metric(rec: Recorder, metric: Any, path: Path) -> dict[str, Any] | None:
    kind = metric.get("type") if isinstance(metric, dict) else None
    if kind not in ("Resource", "ContainerResource", "Pods", "Object", "External"):
        rec.custom(path, DROPPED, f"metric type {kind!r} is not supported")
        return None
    assert isinstance(metric, dict)
    rule = f"metrics.{kind}"
    body = metric.get(
        {"Resource": "resource", "ContainerResource": "containerResource"}.get(kind, kind.lower())
    )
    if kind in ("Object", "External") or not isinstance(body, dict):
        rec.note(path, rule, DROPPED)
        return None
    if kind == "Pods":
        inner = body.get("metric")
        name = inner.get("name") if isinstance(inner, dict) else body.get("metricName")
        target = values.mapping(body.get("target"))
        value = target.get("averageValue", body.get("targetAverageValue"))
        if not isinstance(name, str) or value is None:
            rec.note(path, rule, DROPPED, "needs a metric name and an averageValue")
            return None
        rec.note(path, rule)
        return {"resource": name, "target": {"averageValue": values.text(value)}}
    name = body.get("name")
    target = values.mapping(body.get("target"))
    utilization = target.get("averageUtilization", body.get("targetAverageUtilization"))
    average = target.get("averageValue", body.get("targetAverageValue"))
    if name not in ("cpu", "memory") or (utilization is None and average is None):
        rec.note(
            path,
            rule,
            DROPPED,
            f"resource {name!r}: only cpu and memory, with a utilization or an average value",
        )
        return None
    rec.note(path, rule)
    goal = (
        {"averageUtilization": utilization}
        if utilization is not None
        else {"averageValue": values.text(average)}
    )
    return {"resource": name, "target": goal}


def _behavior(rec: Recorder, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    result: dict[str, Any] = {}
    for direction in ("scaleUp", "scaleDown"):
        rules = raw.get(direction)
        if not isinstance(rules, dict):
            continue
        path: Path = ("spec", "behavior", direction)
        converted: dict[str, Any] = {}
        window = rules.get("stabilizationWindowSeconds")
        if isinstance(window, int) and not isinstance(window, bool) and 0 <= window <= 3600:
            converted["stabilizationWindowSeconds"] = window
            rec.note((*path, "stabilizationWindowSeconds"), "behavior.stabilizationWindowSeconds")
        per_minute = _per_minute(rules.get("policies"))
        if per_minute is not None:
            converted["maxChangePerMinute"] = per_minute
            rec.note(
                (*path, "policies"), "behavior.policies", detail=f"{per_minute} replicas per minute"
            )
        elif "policies" in rules:
            rec.note(
                (*path, "policies"),
                "behavior.policies",
                DROPPED,
                "only Pods policies have an equivalent",
            )
        if "selectPolicy" in rules:
            rec.note((*path, "selectPolicy"), "behavior.selectPolicy")
        if converted:
            result[direction] = converted
        for key in rules:
            if key not in ("stabilizationWindowSeconds", "policies", "selectPolicy"):
                rec.custom(
                    (*path, key), DROPPED, "not recognised by the converter: check its spelling"
                )
    for key in raw:
        if key not in ("scaleUp", "scaleDown"):
            rec.custom(
                ("spec", "behavior", key),
                DROPPED,
                "not recognised by the converter: check its spelling",
            )
    return result


def _per_minute(policies: Any) -> int | None:
    rates = [
        math.ceil(p["value"] * 60 / p["periodSeconds"])
        for p in policies or []
        if isinstance(p, dict)
        and p.get("type") == "Pods"
        and isinstance(p.get("value"), int)
        and isinstance(p.get("periodSeconds"), int)
        and p["periodSeconds"] > 0
        and p["value"] > 0
    ]
    return min(rates) if rates else None
