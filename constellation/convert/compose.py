"""Docker Compose files -> Instances (and Services where ports are published or exposed).

Compose runs images; Constellation runs host processes. A service's `command`/`entrypoint`
becomes the Instance's command, run from the host's filesystem; `image` cannot carry over and
the report says so. A service with no command at all gets a placeholder command that fails
saying what to set, so the manifest is still valid and the gap is loud, not silent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from constellation.apis.instance import CAPABILITIES, INSTANCE_LABEL
from constellation.apis.loader import Document, ManifestError, parse_documents
from constellation.apis.meta import API_VERSION
from constellation.convert import values
from constellation.convert.context import Context, base_dir
from constellation.convert.interpolate import InterpolationError, Interpolator, read_env_file
from constellation.convert.mapping import APPROXIMATED, CONVERTED, DROPPED, IMAGE_NOTE
from constellation.convert.report import Note, ObjectReport, Recorder, dotted
from constellation.convert.report import Path as FieldPath

_MERGED_LISTS = {"ports", "expose", "volumes", "cap_add", "cap_drop", "tmpfs", "secrets", "configs"}
_RESTART = {
    "no": "Never",
    "always": "Always",
    "on-failure": "OnFailure",
    "unless-stopped": "Always",
}
_CONDITION = {"none": "Never", "on-failure": "OnFailure", "any": "Always"}
# Docker's healthcheck defaults, kept: Constellation's probe defaults are Kubernetes' (10s, 1s).
_DOCKER_INTERVAL, _DOCKER_TIMEOUT = 30, 30
COMPOSE_KEYS = frozenset({"services", "version", "networks", "volumes", "secrets", "configs"})


def placeholder(what: str) -> list[str]:
    """A command that fails, saying what the converted manifest still needs."""
    message = f"constellation convert: {what} has no command to run on the host; set spec.command"
    return ["sh", "-c", f"echo '{message.replace(chr(39), '')}' >&2; exit 64"]


def convert_compose(document: Document, index: int, ctx: Context) -> None:
    directory = base_dir(document.source)
    environ = {**_dot_env(directory), **ctx.environ}
    interpolator = Interpolator(environ)
    data = _interpolated(interpolator, document)
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        raise ManifestError(
            f"{document.where(['services'])}: a Compose file needs a services mapping "
            "(name: {image, command, ...})"
        )
    top = ObjectReport(document.source, index, document.line, (), "compose file (top level)")
    project = data.get("name")
    for name in services:
        path: FieldPath = ("services", name)
        report = ObjectReport(
            document.source, index, document.line_of(path), path, f"service {name}"
        )
        for where, variable in interpolator.unset:
            if where[:2] == path:
                report.notes.append(_unset(where[2:], variable))
        resolved = _extends(str(name), services, directory, environ, report)
        _Service(ctx, report, str(name), resolved, data, directory, project).convert()
        ctx.conversion.objects.append(report)
        top.outputs.extend(report.outputs)
    _top_level(top, data, interpolator)
    if len(top.notes) > 0:
        ctx.conversion.objects.append(top)


def _interpolated(interpolator: Interpolator, document: Document) -> dict[str, Any]:
    try:
        result = interpolator.data(document.data)
    except InterpolationError as error:
        raise ManifestError(f"{document.where(error.path)}: {error}") from None
    assert isinstance(result, dict)
    return result


def _dot_env(directory: Path | None) -> dict[str, str]:
    """The project's `.env` next to the Compose file, if there is one."""
    if directory is None or not (directory / ".env").is_file():
        return {}
    try:
        return read_env_file(directory / ".env")
    except (OSError, UnicodeError):
        return {}


def _unset(path: FieldPath, variable: str) -> Note:
    return Note(path, APPROXIMATED, "-", f"${{{variable}}} is not set: an empty string was used")


def _top_level(top: ObjectReport, data: dict[str, Any], interpolator: Interpolator) -> None:
    recorder = Recorder(top, "compose-file")
    for where, variable in interpolator.unset:
        if where[:1] != ("services",):
            top.notes.append(_unset(where, variable))
    recorder.sweep({key: value for key, value in data.items() if key != "services"}, ())


# -- extends ------------------------------------------------------------------------------------


def _extends(
    name: str,
    services: dict[str, Any],
    directory: Path | None,
    environ: dict[str, str],
    report: ObjectReport,
    seen: frozenset[str] = frozenset(),
) -> Any:
    """The service with the service it extends merged in (its own fields win)."""
    service = services[name]
    if not isinstance(service, dict) or "extends" not in service:
        return service
    recorder = Recorder(report, "compose")
    spec = service["extends"]
    base_name = (
        spec if isinstance(spec, str) else spec.get("service") if isinstance(spec, dict) else None
    )
    file = spec.get("file") if isinstance(spec, dict) else None
    try:
        pool = services if file is None else _other_file(str(file), directory, environ)
        if not isinstance(base_name, str) or base_name not in pool:
            raise ValueError(f'no service "{base_name}" to extend')
        if base_name in seen:
            raise ValueError(f'services extend each other in a cycle ("{base_name}")')
        base = _extends(base_name, pool, directory, environ, report, seen | {name})
    except ValueError as error:
        recorder.note(("extends",), "extends", DROPPED, str(error))
        return service
    recorder.note(("extends",), "extends", detail=f"fields of {base_name} merged in")
    own = {key: value for key, value in service.items() if key != "extends"}
    return _merge(base, own) if isinstance(base, dict) else own


def _other_file(file: str, directory: Path | None, environ: dict[str, str]) -> dict[str, Any]:
    if directory is None:
        raise ValueError(f"{file} cannot be found relative to standard input")
    path = directory / file
    try:
        documents = parse_documents(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeError, ManifestError) as error:
        raise ValueError(f"cannot read {file}: {error}") from None
    data = Interpolator(environ).data(documents[0].data) if documents else {}
    services = data.get("services")
    if not isinstance(services, dict):
        raise ValueError(f"{file} has no services")
    return services


def _merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in own.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = _merge(old, value)
        elif isinstance(old, list) and isinstance(value, list) and key in _MERGED_LISTS:
            merged[key] = old + [item for item in value if item not in old]
        else:
            merged[key] = value
    return merged


# -- one service --------------------------------------------------------------------------------


class _Service:
    """One Compose service, converted field by field into an Instance spec."""

    def __init__(
        self,
        ctx: Context,
        report: ObjectReport,
        name: str,
        service: Any,
        data: dict[str, Any],
        directory: Path | None,
        project: Any,
    ) -> None:
        self.ctx, self.report, self.name = ctx, report, name
        self.service: dict[str, Any] = service if isinstance(service, dict) else {}
        self.top, self.directory, self.project = data, directory, project
        self.rec = Recorder(report, "compose")
        self.spec: dict[str, Any] = {}
        self.labels: dict[str, str] = {}
        self.annotations: dict[str, str] = {}
        self.service_ports: list[dict[str, Any]] = []
        self.instance_ports: dict[tuple[int, str], str] = {}

    def convert(self) -> None:
        if not self.service:
            self.rec.custom((), DROPPED, "an empty service: nothing to run")
            return
        steps = (
            self._command,
            self._environment,
            self._ports,
            self._deploy,
            self._restart,
            self._healthcheck,
            self._process,
            self._isolation,
            self._metadata,
            self._host_only,
        )
        for step in steps:
            step()
        self.rec.sweep(self.service, ())
        self.rec.finish(self.service)
        self._emit()

    def has(self, key: str) -> bool:
        return key in self.service

    # -- what runs --------------------------------------------------------------------------

    def _command(self) -> None:
        entry = self._words("entrypoint")
        command = self._words("command")
        image = self.service.get("image")
        what = f"image {image}" if isinstance(image, str) else f"service {self.name}"
        if (entry or (command and not command[0].startswith("-"))) and self.has("image"):
            self.rec.note(("image",), "image", detail=IMAGE_NOTE)
        if entry:
            self._run(entry, command)
            if command:
                self.rec.note(("command",), "command", detail="spec.args, after the entrypoint")
        elif command and not command[0].startswith("-"):
            self.spec["command"] = command
        else:
            self._run(placeholder(what), command)
            if command:
                self.rec.note(
                    ("command",),
                    "command",
                    APPROXIMATED,
                    "arguments for the image's entrypoint (they start with '-'): kept as "
                    "spec.args after a placeholder command",
                )
            missing = (
                "no command or entrypoint: the program the image ran is unknown here; "
                "spec.command is a placeholder that fails saying so: set it"
            )
            for key in ("image", "build"):
                if self.has(key):
                    self.rec.note((key,), key, DROPPED, missing)

    def _run(self, command: list[str], args: list[str] | None) -> None:
        self.spec["command"] = command
        if args:
            self.spec["args"] = args

    def _words(self, key: str) -> list[str] | None:
        if key not in self.service or self.service[key] is None:
            return None
        try:
            found = values.words(self.service[key])
        except ValueError as error:
            self.rec.note((key,), key, DROPPED, str(error))
            return None
        return found or None

    # -- environment ------------------------------------------------------------------------

    def _environment(self) -> None:
        env: dict[str, str] = {}
        self._env_files(env)
        raw = self.service.get("environment")
        pairs: list[tuple[FieldPath, str, Any]] = []
        if isinstance(raw, dict):
            pairs = [(("environment", key), str(key), value) for key, value in raw.items()]
        elif isinstance(raw, list):
            for index, item in enumerate(raw):
                key, sep, value = str(item).partition("=")
                pairs.append((("environment", index), key, value if sep else None))
        for path, key, value in pairs:
            self._env_var(env, path, key, value)
        if env:
            self.spec["env"] = [{"name": key, "value": value} for key, value in env.items()]

    def _env_var(self, env: dict[str, str], path: FieldPath, key: str, value: Any) -> None:
        try:
            values.env_name(key)
            text = values.text(value) if value is not None else self.ctx.environ.get(key)
        except ValueError as error:
            self.rec.note(path, "environment", DROPPED, str(error))
            return
        if text is None:
            detail = f"{key} takes its value from the environment, where it is not set"
            self.rec.note(path, "environment", DROPPED, detail)
            return
        env[key] = text
        self.rec.note(path, "environment")

    def _env_files(self, env: dict[str, str]) -> None:
        raw = self.service.get("env_file")
        entries = [raw] if isinstance(raw, str | dict) else raw if isinstance(raw, list) else []
        for index, entry in enumerate(entries):
            path: FieldPath = ("env_file",) if isinstance(raw, str | dict) else ("env_file", index)
            file = entry.get("path") if isinstance(entry, dict) else entry
            required = entry.get("required", True) if isinstance(entry, dict) else True
            if self.directory is None or not isinstance(file, str):
                self.rec.note(path, "env_file", DROPPED, "no file to read relative to stdin")
                continue
            try:
                env.update(read_env_file(self.directory / file))
            except (OSError, UnicodeError) as error:
                status = DROPPED if required else CONVERTED
                reason = getattr(error, "strerror", None) or str(error)
                self.rec.note(path, "env_file", status, f"{file} not read: {reason}")
                continue
            self.rec.note(path, "env_file", detail=f"read {self.directory / file}")

    # -- ports ------------------------------------------------------------------------------

    def _ports(self) -> None:
        for index, entry in enumerate(self._list("ports")):
            self._port(("ports", index), entry)
        for index, entry in enumerate(self._list("expose")):
            self._expose(("expose", index), entry)
        if self.instance_ports:
            self.spec["ports"] = [
                {"name": name, "port": port, "protocol": protocol}
                for (port, protocol), name in self.instance_ports.items()
            ]

    def _list(self, key: str) -> list[Any]:
        value = self.service.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.rec.note((key,), key, DROPPED, f"expected a list, not {type(value).__name__}")
            return []
        return value

    def _port(self, path: FieldPath, entry: Any) -> None:
        try:
            mappings, host_ip = _parse_port(entry)
        except ValueError as error:
            self.rec.note(path, "ports", DROPPED, str(error))
            return
        notes = []
        for target, published, protocol in mappings:
            if protocol not in ("TCP", "UDP"):
                self.rec.note(path, "ports", DROPPED, f"protocol {protocol} is not supported")
                return
            self._instance_port(target, protocol)
            self._service_port(published or target, target, protocol)
            if published is None:
                notes.append(f"no published port: the Service listens on {target}")
        if host_ip:
            notes.append(f"host_ip {host_ip} is not enforced: the Service decides where it listens")
        if notes:
            self.rec.note(path, "ports", APPROXIMATED, "; ".join(notes))
        else:
            self.rec.note(path, "ports")

    def _expose(self, path: FieldPath, entry: Any) -> None:
        try:
            mappings, _ = _parse_port(str(entry))
        except ValueError as error:
            self.rec.note(path, "expose", DROPPED, str(error))
            return
        for target, _published, protocol in mappings:
            self._instance_port(target, protocol)
            self._service_port(target, target, protocol)
        self.rec.note(path, "expose")

    def _instance_port(self, port: int, protocol: str) -> str:
        key = (port, protocol)
        if key not in self.instance_ports:
            self.instance_ports[key] = values.port_label(protocol, port)
        return self.instance_ports[key]

    def _service_port(self, port: int, target: int, protocol: str) -> None:
        if any(p["port"] == port and p["protocol"] == protocol for p in self.service_ports):
            return
        name = values.port_label(protocol, port)
        self.service_ports.append(
            {"name": name, "port": port, "targetPort": target, "protocol": protocol}
        )

    # -- deploy -----------------------------------------------------------------------------

    def _deploy(self) -> None:
        deploy = self.service.get("deploy")
        if self.has("scale") and not (isinstance(deploy, dict) and "replicas" in deploy):
            self._replicas(("scale",), "scale", self.service["scale"])
        if not isinstance(deploy, dict):
            return
        if "replicas" in deploy:
            self._replicas(("deploy", "replicas"), "deploy.replicas", deploy["replicas"])
        if deploy.get("mode") == "global":
            self.spec.setdefault("placement", {})["maxPerNode"] = 1
            self.spec["replicas"] = 1
            self.rec.note(
                ("deploy", "mode"),
                "deploy.mode",
                APPROXIMATED,
                "one replica per node (placement.maxPerNode: 1) and replicas: 1: raise replicas "
                "to the number of nodes",
            )
        self._resources(deploy.get("resources"))
        self._restart_policy(deploy.get("restart_policy"))
        self._placement(deploy.get("placement"))
        self._update_config(deploy.get("update_config"))
        labels = deploy.get("labels")
        if isinstance(labels, dict):
            self.annotations.update(
                {
                    str(k): values.text(v)
                    for k, v in labels.items()
                    if values.is_annotation_key(str(k))
                }
            )
        for key in ("resources", "restart_policy", "placement", "update_config"):
            self._sweep_deploy(deploy, key)
        self.rec.sweep(deploy, ("deploy",), "deploy.")

    def _sweep_deploy(self, deploy: dict[str, Any], key: str) -> None:
        section = deploy.get(key)
        self.rec.sweep(section, ("deploy", key), f"deploy.{key}.")
        if isinstance(section, dict):
            for sub in ("limits", "reservations"):
                self.rec.sweep(section.get(sub), ("deploy", key, sub), f"deploy.{key}.{sub}.")

    def _replicas(self, path: FieldPath, rule: str, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            self.spec["replicas"] = value
            self.rec.note(path, rule)
        else:
            self.rec.note(path, rule, DROPPED, f"{value!r} is not a replica count")

    def _resources(self, resources: Any) -> None:
        if not isinstance(resources, dict):
            return
        for side, target in (("limits", "limits"), ("reservations", "requests")):
            amounts = resources.get(side)
            if isinstance(amounts, dict):
                self._amounts(
                    amounts, ("deploy", "resources", side), f"deploy.resources.{side}.", target
                )

    def _amounts(self, amounts: dict[str, Any], path: FieldPath, prefix: str, target: str) -> None:
        converters = {"cpus": ("cpu", values.cpus), "memory": ("memory", values.docker_memory)}
        for key, value in amounts.items():
            if key == "pids" and target == "limits":
                self._set_resource(target, "pids", value, (*path, key), prefix + key, _pids)
            elif key in converters:
                name, convert = converters[key]
                self._set_resource(target, name, value, (*path, key), prefix + key, convert)

    def _set_resource(
        self, side: str, name: str, value: Any, path: FieldPath, rule: str, convert: Any
    ) -> None:
        try:
            converted = convert(value)
        except (ValueError, TypeError) as error:
            self.rec.note(path, rule, DROPPED, str(error))
            return
        resources = self.spec.setdefault("resources", {})
        resources.setdefault(side, {})[name] = converted
        self.rec.note(path, rule)

    def _restart_policy(self, policy: Any) -> None:
        if not isinstance(policy, dict):
            return
        path: FieldPath = ("deploy", "restart_policy")
        condition = policy.get("condition")
        if condition is not None:
            if condition in _CONDITION:
                self.spec["restartPolicy"] = _CONDITION[condition]
                self.rec.note((*path, "condition"), "deploy.restart_policy.condition")
            else:
                self.rec.note(
                    (*path, "condition"),
                    "deploy.restart_policy.condition",
                    DROPPED,
                    f'unknown condition "{condition}"',
                )
        if "delay" in policy:
            try:
                delay = max(values.whole_seconds(policy["delay"]), 1)
                self.spec["restartBackoff"] = {"initial": f"{delay}s", "max": f"{max(delay, 300)}s"}
                self.rec.note((*path, "delay"), "deploy.restart_policy.delay")
            except ValueError as error:
                self.rec.note((*path, "delay"), "deploy.restart_policy.delay", DROPPED, str(error))

    def _placement(self, placement: Any) -> None:
        if not isinstance(placement, dict):
            return
        path: FieldPath = ("deploy", "placement")
        constraints = placement.get("constraints")
        for index, constraint in enumerate(constraints if isinstance(constraints, list) else []):
            key, sep, value = str(constraint).partition("==")
            key, value = key.strip(), value.strip()
            if sep and key.startswith("node.labels.") and values.is_label(key[12:], value):
                selector = self.spec.setdefault("placement", {}).setdefault("nodeSelector", {})
                selector[key[12:]] = value
                self.rec.note((*path, "constraints", index), "deploy.placement.constraints")
            else:
                self.rec.note(
                    (*path, "constraints", index),
                    "deploy.placement.constraints",
                    DROPPED,
                    f'"{constraint}": only node.labels.KEY == VALUE has an equivalent',
                )
        most = placement.get("max_replicas_per_node")
        if isinstance(most, int) and not isinstance(most, bool) and most >= 1:
            self.spec.setdefault("placement", {})["maxPerNode"] = most
            self.rec.note(
                (*path, "max_replicas_per_node"), "deploy.placement.max_replicas_per_node"
            )

    def _update_config(self, update: Any) -> None:
        if not isinstance(update, dict):
            return
        path: FieldPath = ("deploy", "update_config")
        parallelism = update.get("parallelism", 1)
        if not isinstance(parallelism, int) or isinstance(parallelism, bool) or parallelism < 1:
            parallelism = 1
        if update.get("order") == "start-first":
            strategy = {"maxSurge": parallelism, "maxUnavailable": 0}
        else:
            strategy = {"maxUnavailable": parallelism, "maxSurge": 0}
        self.spec["updateStrategy"] = {"type": "RollingUpdate", **strategy}
        for key in ("parallelism", "order"):
            if key in update:
                self.rec.note((*path, key), f"deploy.update_config.{key}")

    # -- restarts and health ------------------------------------------------------------------

    def _restart(self) -> None:
        if not self.has("restart"):
            return
        value = str(self.service["restart"]).split(":")[0]
        if value not in _RESTART:
            self.rec.note(("restart",), "restart", DROPPED, f'unknown restart policy "{value}"')
            return
        if "restartPolicy" not in self.spec:  # deploy.restart_policy wins, as in Compose
            self.spec["restartPolicy"] = _RESTART[value]
        if value == "unless-stopped":
            self.rec.note(("restart",), "restart", APPROXIMATED, "unless-stopped: Always")
        elif ":" in str(self.service["restart"]):
            self.rec.note(
                ("restart",),
                "restart",
                APPROXIMATED,
                "on-failure:N: OnFailure; restarts never give up, the backoff grows instead",
            )
        else:
            self.rec.note(("restart",), "restart", detail=f"{value}: {_RESTART[value]}")

    def _healthcheck(self) -> None:
        check = self.service.get("healthcheck")
        if not isinstance(check, dict):
            return
        path: FieldPath = ("healthcheck",)
        if check.get("disable") is True:
            self.rec.note((*path, "disable"), "healthcheck.disable")
            self.rec.sweep(check, path, "healthcheck.")
            return
        action = self._health_action(check.get("test"))
        if action is None:
            self.rec.sweep(check, path, "healthcheck.")
            return
        probe: dict[str, Any] = {
            "exec": {"command": action},
            "periodSeconds": _DOCKER_INTERVAL,
            "timeoutSeconds": _DOCKER_TIMEOUT,
        }
        timings = (
            ("interval", "periodSeconds"),
            ("timeout", "timeoutSeconds"),
            ("start_period", "initialDelaySeconds"),
        )
        for key, field in timings:
            if key in check:
                self._probe_seconds(probe, field, (*path, key), f"healthcheck.{key}", check[key])
        retries = check.get("retries")
        if isinstance(retries, int) and not isinstance(retries, bool) and retries >= 1:
            probe["failureThreshold"] = retries
            self.rec.note((*path, "retries"), "healthcheck.retries")
        probe["timeoutSeconds"] = min(probe["timeoutSeconds"], probe["periodSeconds"])
        self.spec["readinessProbe"] = probe
        self.rec.sweep(check, path, "healthcheck.")

    def _health_action(self, test: Any) -> list[str] | None:
        path: FieldPath = ("healthcheck", "test")
        rule = "healthcheck.test"
        if isinstance(test, str):
            self.rec.note(path, rule, detail="sh -c TEST")
            return ["sh", "-c", test]
        if not isinstance(test, list) or not test:
            self.rec.note(path, rule, DROPPED, "no test: no probe")
            return None
        head, rest = str(test[0]), [values.text(item) for item in test[1:]]
        if head == "NONE":
            self.rec.note(path, rule, detail="NONE: no probe")
            return None
        if head == "CMD" and rest:
            self.rec.note(path, rule, detail="the command, as an exec probe")
            return rest
        if head == "CMD-SHELL" and rest:
            self.rec.note(path, rule, detail="sh -c TEST, as an exec probe")
            return ["sh", "-c", " ".join(rest)]
        self.rec.note(path, rule, DROPPED, f"{head}: expected CMD, CMD-SHELL or NONE and a command")
        return None

    def _probe_seconds(
        self, probe: dict[str, Any], field: str, path: FieldPath, rule: str, value: Any
    ) -> None:
        try:
            amount = values.whole_seconds(value)
        except ValueError as error:
            self.rec.note(path, rule, DROPPED, str(error))
            return
        probe[field] = max(amount, 1) if field != "initialDelaySeconds" else amount
        self.rec.note(path, rule)

    # -- the process --------------------------------------------------------------------------

    def _process(self) -> None:
        simple = (
            ("user", "user", values.user),
            ("working_dir", "workingDir", _absolute),
            ("stop_grace_period", "terminationGracePeriodSeconds", values.whole_seconds),
            ("stop_signal", "stopSignal", values.stop_signal),
        )
        for key, field, convert in simple:
            if self.has(key):
                try:
                    self.spec[field] = convert(self.service[key])
                except ValueError as error:
                    self.rec.note((key,), key, DROPPED, str(error))
                    continue
                self.rec.note((key,), key)
        self._limits_v2()
        self._depends_on()

    def _limits_v2(self) -> None:
        """The pre-deploy resource keys (`cpus`, `mem_limit`, ...): deploy.resources wins."""
        legacy = (
            ("cpus", "limits", "cpu", values.cpus),
            ("mem_limit", "limits", "memory", values.docker_memory),
            ("mem_reservation", "requests", "memory", values.docker_memory),
            ("pids_limit", "limits", "pids", _pids),
        )
        for key, side, name, convert in legacy:
            if not self.has(key):
                continue
            present = self.spec.get("resources", {}).get(side, {})
            if name in present:
                self.rec.note((key,), key, APPROXIMATED, "deploy.resources sets it too and wins")
                continue
            self._set_resource(side, name, self.service[key], (key,), key, convert)

    def _depends_on(self) -> None:
        if not self.has("depends_on"):
            return
        if self.spec.get("restartPolicy", "Always") == "Never":
            self.rec.note(
                ("depends_on",),
                "depends_on",
                DROPPED,
                "no start order, and with restart: no a replica that starts before its "
                "dependency fails for good",
            )
        else:
            self.rec.note(("depends_on",), "depends_on")

    def _isolation(self) -> None:
        isolation: dict[str, Any] = {}
        namespaces = ["pid", "mount", "uts", "ipc"]
        for key in ("pid", "ipc", "uts"):
            if self.has(key):
                if self.service[key] == "host":
                    namespaces.remove(key)
                    self.rec.note((key,), key)
                else:
                    self.rec.note(
                        (key,), key, DROPPED, f"{self.service[key]}: only host has an equivalent"
                    )
        if namespaces != ["pid", "mount", "uts", "ipc"]:
            isolation["namespaces"] = namespaces
        self._network_mode(isolation)
        if self.service.get("read_only") is True:
            isolation["readOnlyPaths"] = ["/"]
        if self.has("read_only"):
            status = None if self.service["read_only"] is True else CONVERTED
            self.rec.note(
                ("read_only",), "read_only", status, None if status is None else "false: writable"
            )
        self._tmpfs()
        self._capabilities(isolation)
        if isolation:
            self.spec["isolation"] = isolation

    def _network_mode(self, isolation: dict[str, Any]) -> None:
        mode = self.service.get("network_mode")
        if mode is None:
            return
        if mode in ("host", "none"):
            isolation["network"] = mode
            self.rec.note(("network_mode",), "network_mode")
        else:
            self.rec.note(("network_mode",), "network_mode", DROPPED, f"{mode}: no equivalent")

    def _tmpfs(self) -> None:
        raw = self.service.get("tmpfs")
        entries = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        for index, entry in enumerate(entries):
            path: FieldPath = ("tmpfs",) if isinstance(raw, str) else ("tmpfs", index)
            if str(entry).split(":")[0] == "/tmp":
                self.rec.note(path, "tmpfs", detail="a private /tmp (privateTmp, the default)")
            else:
                self.rec.note(path, "tmpfs", DROPPED, f"{entry}: only /tmp has an equivalent")

    def _capabilities(self, isolation: dict[str, Any]) -> None:
        added: list[str] = []
        for index, name in enumerate(self._list("cap_add")):
            path: FieldPath = ("cap_add", index)
            if str(name).upper() == "ALL":
                added = list(dict.fromkeys([*added, *CAPABILITIES]))
                self.rec.note(path, "cap_add", detail="ALL: every capability")
                continue
            try:
                added = list(dict.fromkeys([*added, values.capability(str(name))]))
            except ValueError as error:
                self.rec.note(path, "cap_add", DROPPED, str(error))
                continue
            self.rec.note(path, "cap_add")
        dropped = {str(name).upper().removeprefix("CAP_") for name in self._list("cap_drop")}
        kept = [cap for cap in added if cap.removeprefix("CAP_") not in dropped]
        if kept:
            isolation["capabilities"] = kept

    # -- metadata -----------------------------------------------------------------------------

    def _metadata(self) -> None:
        raw = self.service.get("labels")
        pairs: list[tuple[FieldPath, str, str]] = []
        if isinstance(raw, dict):
            pairs = [(("labels", k), str(k), values.text(v)) for k, v in raw.items()]
        elif isinstance(raw, list):
            for index, item in enumerate(raw):
                key, _, value = str(item).partition("=")
                pairs.append((("labels", index), key, value))
        for path, key, value in pairs:
            self._label(path, key, value)
        annotations = self.service.get("annotations")
        if isinstance(annotations, dict):
            for key, value in annotations.items():
                self._annotation(("annotations", key), "annotations", str(key), values.text(value))
        for index, profile in enumerate(self._list("profiles")):
            key = f"compose-profile-{values.dns_label(str(profile))}"[:63].rstrip("-")
            self.labels[key] = "true"
            self.rec.note(("profiles", index), "profiles", detail=f"labelled {key}: 'true'")

    def _label(self, path: FieldPath, key: str, value: str) -> None:
        if values.is_label(key, value):
            self.labels[key] = value
            self.rec.note(path, "labels")
        else:
            self._annotation(path, "labels", key, value, "not a valid label: kept as an annotation")

    def _annotation(
        self, path: FieldPath, rule: str, key: str, value: str, why: str | None = None
    ) -> None:
        if values.is_annotation_key(key):
            self.annotations[key] = value
            self.rec.note(path, rule, APPROXIMATED if why else None, why)
        else:
            self.rec.note(path, rule, DROPPED, f'"{key}" is not a valid annotation key')

    # -- what has no equivalent ---------------------------------------------------------------

    def _host_only(self) -> None:
        for index, volume in enumerate(self._list("volumes")):
            self.rec.note(("volumes", index), "volumes", detail=self._volume_detail(volume))
        for key in ("secrets", "configs"):
            for index, entry in enumerate(self._list(key)):
                self.rec.note((key, index), key, detail=self._secret_detail(key, entry))
        for key in ("hostname", "container_name"):
            if self.has(key):
                self.rec.note((key,), key)

    def _volume_detail(self, volume: Any) -> str:
        if isinstance(volume, dict):
            source, target, kind = volume.get("source"), volume.get("target"), volume.get("type")
        else:
            parts = str(volume).split(":")
            source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
            kind = "bind" if source and source.startswith((".", "/", "~")) else "volume"
        if kind == "bind" and isinstance(source, str):
            where = (
                self.directory / source
                if self.directory and not source.startswith(("/", "~"))
                else Path(source)
            )
            return (
                f"no bind mounts: the process finds {where} there, not at {target}; "
                "point it at the host path"
            )
        return f"no volumes: {source or 'an anonymous volume'} at {target} does not exist"

    def _secret_detail(self, key: str, entry: Any) -> str:
        name = entry.get("source") if isinstance(entry, dict) else entry
        target = entry.get("target") if isinstance(entry, dict) else None
        mount = (
            target
            if isinstance(target, str) and target.startswith("/")
            else f"/run/{key}/{target or name}"
        )
        definition = (
            self.top.get(key, {}).get(name) if isinstance(self.top.get(key), dict) else None
        )
        file = definition.get("file") if isinstance(definition, dict) else None
        if isinstance(file, str):
            where = self.directory / file if self.directory else Path(file)
            return f"no {mount}: the process can read {where} instead"
        return f"no {mount}: {name} is not a file Constellation could point to"

    # -- output -------------------------------------------------------------------------------

    def _emit(self) -> None:
        name = values.dns_label(self.name)
        if name != self.name:
            self.rec.custom(
                None,
                APPROXIMATED,
                f'"{self.name}" is not a DNS label: named {name}',
                "metadata.name",
            )
        if self.project is not None:
            project = values.dns_label(str(self.project))
            self.labels.setdefault("compose-project", project)
        metadata: dict[str, Any] = {"name": name}
        if self.labels:
            metadata["labels"] = self.labels
        if self.annotations:
            metadata["annotations"] = self.annotations
        origin = dotted(self.report.root)
        instance = {
            "apiVersion": API_VERSION,
            "kind": "Instance",
            "metadata": metadata,
            "spec": self.spec,
        }
        if not self.ctx.emit(self.report, instance, origin) or not self.service_ports:
            return
        final = metadata["name"]
        service = {
            "apiVersion": API_VERSION,
            "kind": "Service",
            "metadata": {"name": final, **({"labels": dict(self.labels)} if self.labels else {})},
            "spec": {"selector": {INSTANCE_LABEL: final}, "ports": self.service_ports},
        }
        self.ctx.emit(self.report, service, origin)


def _absolute(value: Any) -> str:
    text = values.text(value)
    if not text.startswith("/"):
        raise ValueError(f'"{text}" is not an absolute path')
    return text


def _pids(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{value!r} is not a process count (-1, unlimited, is the default)")
    return value


def _parse_port(entry: Any) -> tuple[list[tuple[int, int | None, str]], str | None]:
    """A Compose port (short or long syntax) as (container port, published port or None,
    protocol) for each port of a range, and the host IP if one is set."""
    if isinstance(entry, dict):
        published = entry.get("published")
        host_ip = entry.get("host_ip")
        return _pair(
            [values.port_number(entry.get("target"))],
            _range(str(published)) if published is not None else [None],
            str(entry.get("protocol", "tcp")).upper(),
        ), host_ip if isinstance(host_ip, str) else None
    if isinstance(entry, int) and not isinstance(entry, bool):
        return [(values.port_number(entry), None, "TCP")], None
    text, _, protocol = str(entry).partition("/")
    parts = text.rsplit(":", 2)
    host = parts[0].strip("[]") if len(parts) == 3 else None
    published_text = parts[-2] if len(parts) >= 2 and parts[-2] else None
    published_ports: list[int | None] = [None]
    if published_text is not None:
        published_ports = _range(published_text)
    return _pair(_range(parts[-1]), published_ports, (protocol or "tcp").upper()), host


def _range(text: str) -> list[int | None]:
    low, sep, high = text.partition("-")
    first = values.port_number(low)
    last = values.port_number(high) if sep else first
    if last < first or last - first > 1000:
        raise ValueError(f'invalid port range "{text}"')
    return list(range(first, last + 1))


def _pair(
    targets: list[Any], published: list[int | None], protocol: str
) -> list[tuple[int, int | None, str]]:
    if len(published) == len(targets):
        return [(int(t), p, protocol) for t, p in zip(targets, published, strict=True)]
    # A published range for one target: Compose picks one port of the range; take the first.
    return [(int(targets[0]), published[0], protocol)] + [
        (int(t), None, protocol) for t in targets[1:]
    ]
