"""Prometheus alerting rules (rule files and PrometheusRule objects) -> Alerts.

An Alert's `expr` is evaluated over Constellation's own metrics, so a rule converts only when
every metric its expression reads is one Constellation provides; the others are reported with
the metrics that are missing. Recording rules have no equivalent.
"""

from __future__ import annotations

import re
from typing import Any

from constellation.apis.loader import Document, ManifestError
from constellation.apis.meta import API_VERSION
from constellation.convert import values
from constellation.convert.context import Context
from constellation.convert.kubernetes import check_identity, object_meta
from constellation.convert.mapping import APPROXIMATED, CONVERTED, DROPPED
from constellation.convert.report import ObjectReport, Path, Recorder

# The metrics Constellation's alerts are written over (the example manifests use them);
# docs/migration.md lists them. A rule reading anything else is not converted.
PROVIDED_METRICS = frozenset({"instance_ready_replicas", "replica_restarts_total"})
_SEVERITIES = ("critical", "warning", "info")
# PromQL words that are not metric names.
_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "atan2",
        "inf",
        "nan",
        "start",
        "end",
    }
)
_STRINGS = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|`[^`]*`")
_GROUPINGS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_BRACES = re.compile(r"\{[^}]*\}|\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_DURATION_LIKE = re.compile(r"^[0-9]")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, keywords, label matchers,
    ranges and grouping labels left out)."""
    text = _STRINGS.sub('""', expr)
    text = _GROUPINGS.sub(" ", text)
    text = _BRACES.sub(" ", text)
    names = {match for match in _IDENTIFIER.findall(text) if match.lower() not in _KEYWORDS}
    return {name for name in names if not _DURATION_LIKE.match(name)}


def convert_rules_file(document: Document, index: int, ctx: Context) -> None:
    groups = document.data.get("groups")
    if not isinstance(groups, list):
        raise ManifestError(f"{document.where(['groups'])}: groups: expected a list of rule groups")
    _groups(document, index, ctx, groups, ("groups",), {})
    top = ObjectReport(document.source, index, document.line, (), "rules file (top level)")
    rec = Recorder(top, "prometheus")
    if not groups:
        rec.custom(("groups",), CONVERTED, "no rule groups: nothing to convert")
    rec.sweep({key: value for key, value in document.data.items() if key != "groups"}, ())
    if top.notes:
        top.outputs = _outputs_under(ctx, top, ("groups",))
        ctx.conversion.objects.append(top)


def convert_prometheus_rule(document: Document, index: int, ctx: Context) -> None:
    check_identity(document)
    data = document.data
    raw_meta = values.mapping(data.get("metadata"))
    name = raw_meta.get("name") if isinstance(raw_meta, dict) else None
    top = ObjectReport(document.source, index, document.line, (), f"PrometheusRule {name or '?'}")
    ctx.conversion.objects.append(top)
    rec = Recorder(top, "prometheus")
    if not isinstance(name, str) or not name:
        rec.custom((), DROPPED, "metadata.name is missing: nothing to name the result")
        return
    metadata = object_meta(rec, data)
    for key in ("apiVersion", "kind", "metadata"):
        rec.note((key,), "metadata")
    spec = data.get("spec")
    groups = spec.get("groups") if isinstance(spec, dict) else None
    if isinstance(groups, list):
        rec.custom(("spec", "groups"), CONVERTED, "each rule group is reported below", "Alert")
        _groups(document, index, ctx, groups, ("spec", "groups"), metadata)
        top.outputs = _outputs_under(ctx, top, ("spec", "groups"))
    rec.sweep(
        {k: v for k, v in spec.items() if k != "groups"} if isinstance(spec, dict) else {},
        ("spec",),
        "groups.",
    )
    rec.sweep(data, ())


def _groups(
    document: Document,
    index: int,
    ctx: Context,
    groups: list[Any],
    path: Path,
    metadata: dict[str, Any],
) -> None:
    for number, group in enumerate(groups):
        here = (*path, number)
        if not isinstance(group, dict):
            raise ManifestError(f"{document.where(list(here))}: a rule group must be a mapping")
        line = document.line_of(list(here))
        name = group.get("name", number)
        report = ObjectReport(document.source, index, line, here, f"rule group {name}")
        ctx.conversion.objects.append(report)
        Recorder(report, "prometheus").sweep(
            {key: value for key, value in group.items() if key != "rules"}, (), "groups."
        )
        labels = values.mapping(group.get("labels"))
        rules = values.sequence(group.get("rules"))
        if not rules:
            Recorder(report, "prometheus").custom(
                ("rules",), CONVERTED, "no rules: nothing to convert"
            )
        for position, rule in enumerate(rules):
            where = (*here, "rules", position)
            _rule(document, index, ctx, rule, where, group, labels, metadata)
        report.outputs = _outputs_under(ctx, report, here)


def _outputs_under(ctx: Context, parent: ObjectReport, root: Path) -> list[str]:
    """What the objects below `root` in the same document produced (a group's rules)."""
    return [
        output
        for obj in ctx.conversion.objects
        if obj is not parent
        and (obj.source, obj.document) == (parent.source, parent.document)
        and obj.root[: len(root)] == root
        and len(obj.root) > len(root) + 1
        for output in obj.outputs
    ]


def _rule(
    document: Document,
    index: int,
    ctx: Context,
    rule: Any,
    path: Path,
    group: dict[str, Any],
    group_labels: dict[str, Any],
    metadata: dict[str, Any],
) -> None:
    name = rule.get("alert") or rule.get("record") if isinstance(rule, dict) else None
    what = (
        f"alert {rule['alert']}"
        if isinstance(rule, dict) and "alert" in rule
        else f"recording rule {name}"
    )
    report = ObjectReport(document.source, index, document.line_of(list(path)), path, what)
    ctx.conversion.objects.append(report)
    rec = Recorder(report, "prometheus")
    _rule_body(ctx, report, rec, rule, group, group_labels, metadata)
    rec.finish(rule)


def _rule_body(
    ctx: Context,
    report: ObjectReport,
    rec: Recorder,
    rule: Any,
    group: dict[str, Any],
    group_labels: dict[str, Any],
    metadata: dict[str, Any],
) -> None:
    if not isinstance(rule, dict):
        rec.custom((), DROPPED, "a rule must be a mapping")
        return
    if "record" in rule:
        rec.note(("record",), "rules.record")
        rec.custom((), DROPPED, "a recording rule: no equivalent")
        return
    expr = (
        values.text(rule.get("expr", "")) if not isinstance(rule.get("expr"), dict | list) else ""
    )
    missing = sorted(metric_names(expr) - PROVIDED_METRICS)
    if not isinstance(rule.get("alert"), str) or not expr.strip():
        rec.custom((), DROPPED, "an alerting rule needs alert and expr")
        return
    if missing:
        rec.note(
            ("expr",),
            "rules.expr",
            DROPPED,
            f"reads {', '.join(missing)}, which Constellation does not provide: "
            "the rule is not converted",
        )
        rec.custom((), DROPPED, "not converted: see expr")
        return
    spec: dict[str, Any] = {"expr": expr}
    rec.note(("expr",), "rules.expr")
    alert_name = values.dns_label(rule["alert"])
    rec.note(("alert",), "rules.alert", detail=f"named {alert_name}")
    if "for" in rule:
        try:
            spec["for"] = values.go_duration(rule["for"])
            rec.note(("for",), "rules.for")
        except ValueError as error:
            rec.note(("for",), "rules.for", DROPPED, str(error))
    labels = _alert_labels(
        rec,
        {**group_labels, **(rule.get("labels") or {})}
        if isinstance(rule.get("labels") or {}, dict)
        else group_labels,
        spec,
    )
    if labels:
        spec["labels"] = labels
    annotations = rule.get("annotations")
    if isinstance(annotations, dict):
        kept = {
            str(k): values.text(v)
            for k, v in annotations.items()
            if values.is_annotation_key(str(k)) and not isinstance(v, dict | list)
        }
        if kept:
            spec["annotations"] = kept
        for key in annotations:
            status = None if str(key) in kept else DROPPED
            rec.note(
                ("annotations", key),
                "rules.annotations",
                status,
                None if status is None else "not a valid annotation",
            )
    rec.sweep(rule, (), "rules.")
    meta: dict[str, Any] = {
        "name": alert_name,
        "annotations": {"prometheus-group": values.text(group.get("name", ""))},
    }
    for key in ("namespace", "labels"):
        if metadata.get(key):
            meta[key] = metadata[key]
    alert = {"apiVersion": API_VERSION, "kind": "Alert", "metadata": meta, "spec": spec}
    ctx.emit(report, alert, f"alert {rule['alert']}")


def _alert_labels(rec: Recorder, raw: dict[str, Any], spec: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for key, value in raw.items():
        text = values.text(value) if not isinstance(value, dict | list) else ""
        path = ("labels", key)
        if key == "severity" and text in _SEVERITIES:
            spec["severity"] = text
            rec.note(path, "rules.labels", detail=f"spec.severity: {text}")
        elif values.is_label(str(key), text):
            labels[str(key)] = text
            rec.note(path, "rules.labels")
        else:
            rec.note(path, "rules.labels", DROPPED, f"{key}: {text!r} is not a valid label value")
    if "severity" in raw and "severity" not in spec and "severity" in labels:
        rec.note(
            ("labels", "severity"),
            "rules.labels",
            APPROXIMATED,
            "severity kept as a label: not critical, warning or info",
        )
    return labels
