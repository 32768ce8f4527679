"""The field mapping table: every source field the converter knows, what it becomes, and how.

Written once, here. The converters look each field up in it (so the report's wording and
status come from this table), and docs/migration.md prints it: a test renders the tables with
`markdown_table` and compares them with the guide, so the two cannot drift apart. A field the
converters meet that is in no table is reported as dropped ("not recognised").

A field's status here is what usually happens; the converters override it where the value
decides (`restart: unless-stopped` is approximated, `restart: always` converted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Status = Literal["converted", "approximated", "dropped"]
CONVERTED: Final[Status] = "converted"
APPROXIMATED: Final[Status] = "approximated"
DROPPED: Final[Status] = "dropped"

# Which table a field belongs to, in the order docs/migration.md shows them.
SECTIONS: Final = {
    "compose-file": "Compose file, top level",
    "compose": "Compose service (`services.NAME.` ...)",
    "k8s-kind": "Kubernetes kinds",
    "k8s-meta": "Kubernetes `metadata`",
    "k8s-workload": "Kubernetes workload `spec` (Deployment, StatefulSet, DaemonSet, ...)",
    "k8s-pod": "Kubernetes pod `spec` (a Pod's, or a workload's `spec.template.spec`)",
    "k8s-container": "Kubernetes container (`containers[]`)",
    "k8s-probe": "Kubernetes probes (liveness, readiness, startup)",
    "k8s-service": "Kubernetes Service `spec`",
    "k8s-hpa": "Kubernetes HorizontalPodAutoscaler `spec` (v1, v2)",
    "prometheus": "Prometheus alerting rules (`groups:` files and PrometheusRule `spec`)",
}

NOT_RECOGNISED: Final = "not recognised by the converter: check its spelling"


@dataclass(frozen=True)
class Rule:
    section: str
    field: str  # dotted; `*` stands for any other key at that level
    target: str  # the Constellation field it becomes, or "-" for none
    status: Status
    note: str


def _rules(section: str, status: Status, target: str, note: str, *fields: str) -> list[Rule]:
    """Several fields that share a fate (mostly: dropped, for the same reason)."""
    return [Rule(section, field, target, status, note) for field in fields]


_C: Status = CONVERTED
_A: Status = APPROXIMATED
_D: Status = DROPPED
_HOST = "replicas are host processes: "
IMAGE_NOTE: Final = (
    "the program runs from the host's filesystem, not the image's: install what the image "
    "provided on each node"
)

COMPOSE_FILE = [
    Rule("compose-file", "version", "-", _C, "obsolete in Compose too; nothing to carry over"),
    Rule(
        "compose-file",
        "name",
        "metadata.labels[compose-project]",
        _C,
        "every object is labelled with the project name",
    ),
    Rule("compose-file", "include", "-", _D, "not followed: convert the included files with -f"),
    Rule(
        "compose-file",
        "networks",
        "-",
        _D,
        _HOST + "they share the node's network (isolation.network: host); Services give "
        "stable addresses",
    ),
    Rule(
        "compose-file",
        "volumes",
        "-",
        _D,
        _HOST + "there are no named volumes; data lives where the process writes it",
    ),
    Rule(
        "compose-file",
        "secrets",
        "-",
        _D,
        "no secret store: the process can read the file on the host (the service's entry says "
        "where)",
    ),
    Rule("compose-file", "configs", "-", _D, "no config store: as for secrets"),
    Rule("compose-file", "models", "-", _D, "no model runner"),
    Rule("compose-file", "x-*", "-", _C, "extension fields hold YAML anchors, already expanded"),
]

COMPOSE = [
    Rule(
        "compose",
        "image",
        "-",
        _A,
        IMAGE_NOTE + "; without command or entrypoint there is nothing to run: dropped, and a "
        "placeholder command that says so is written",
    ),
    Rule("compose", "build", "-", _D, "images are not built: set spec.command to the program"),
    Rule(
        "compose",
        "entrypoint",
        "spec.command",
        _C,
        "string form split like a shell word list, as Compose does",
    ),
    Rule(
        "compose",
        "command",
        "spec.command or spec.args",
        _C,
        "spec.args after an entrypoint; otherwise spec.command (a command starting with '-' "
        "only makes sense after the image's entrypoint: approximated)",
    ),
    Rule(
        "compose",
        "environment",
        "spec.env",
        _C,
        "list and map forms, ${VAR:-default} interpolated; a bare NAME takes the value from "
        "the environment of convert",
    ),
    Rule(
        "compose",
        "env_file",
        "spec.env",
        _C,
        "read at conversion time, relative to the Compose file; environment wins",
    ),
    Rule(
        "compose",
        "ports",
        "spec.ports + Service",
        _C,
        "the container port becomes an Instance port; a Service of the same name maps the "
        "published port to it. host_ip and a published port range are approximated",
    ),
    Rule(
        "compose",
        "expose",
        "spec.ports + Service",
        _C,
        "an Instance port and a Service port of the same number",
    ),
    Rule("compose", "deploy.replicas", "spec.replicas", _C, ""),
    Rule("compose", "scale", "spec.replicas", _C, "deploy.replicas wins when both are set"),
    Rule(
        "compose",
        "deploy.mode",
        "spec.placement.maxPerNode",
        _C,
        "global: one replica per node (maxPerNode: 1) with replicas: 1, approximated: raise "
        "replicas to the number of nodes",
    ),
    Rule("compose", "deploy.resources.limits.cpus", "spec.resources.limits.cpu", _C, ""),
    Rule(
        "compose",
        "deploy.resources.limits.memory",
        "spec.resources.limits.memory",
        _C,
        "Docker's k, m, g are powers of 1024: 512m becomes 512Mi",
    ),
    Rule("compose", "deploy.resources.limits.pids", "spec.resources.limits.pids", _C, ""),
    Rule("compose", "deploy.resources.reservations.cpus", "spec.resources.requests.cpu", _C, ""),
    Rule(
        "compose",
        "deploy.resources.reservations.memory",
        "spec.resources.requests.memory",
        _C,
        "",
    ),
    *_rules(
        "compose",
        _D,
        "-",
        "no devices or generic resources (GPUs) are scheduled",
        "deploy.resources.reservations.devices",
        "deploy.resources.reservations.generic_resources",
        "deploy.resources.limits.devices",
        "gpus",
        "devices",
        "device_cgroup_rules",
    ),
    Rule(
        "compose",
        "deploy.restart_policy.condition",
        "spec.restartPolicy",
        _C,
        "none: Never, on-failure: OnFailure, any: Always",
    ),
    Rule(
        "compose",
        "deploy.restart_policy.delay",
        "spec.restartBackoff.initial",
        _A,
        "the delay doubles after each restart, up to restartBackoff.max",
    ),
    *_rules(
        "compose",
        _D,
        "-",
        "restarts never give up; the backoff grows instead",
        "deploy.restart_policy.max_attempts",
        "deploy.restart_policy.window",
    ),
    Rule(
        "compose",
        "deploy.placement.constraints",
        "spec.placement.nodeSelector",
        _C,
        "node.labels.KEY == VALUE only; other constraints are dropped",
    ),
    Rule(
        "compose",
        "deploy.placement.max_replicas_per_node",
        "spec.placement.maxPerNode",
        _C,
        "",
    ),
    Rule(
        "compose",
        "deploy.placement.preferences",
        "-",
        _D,
        "replicas are spread over nodes (placement.strategy: Spread)",
    ),
    Rule("compose", "deploy.labels", "metadata.annotations", _A, "kept as annotations"),
    Rule(
        "compose",
        "deploy.update_config.parallelism",
        "spec.updateStrategy.maxUnavailable",
        _C,
        "",
    ),
    Rule(
        "compose",
        "deploy.update_config.order",
        "spec.updateStrategy",
        _C,
        "start-first: maxSurge = parallelism, maxUnavailable: 0; stop-first: maxUnavailable",
    ),
    Rule(
        "compose",
        "deploy.update_config.*",
        "-",
        _D,
        "rolling updates wait for readiness; no delay, monitor or failure action",
    ),
    Rule("compose", "deploy.rollback_config", "-", _D, "no automatic rollback"),
    Rule("compose", "deploy.endpoint_mode", "-", _D, "Services always balance over endpoints"),
    Rule(
        "compose",
        "restart",
        "spec.restartPolicy",
        _C,
        "no: Never, always: Always, on-failure: OnFailure; unless-stopped: Always "
        "(approximated: there is no manual stop that survives a restart)",
    ),
    Rule(
        "compose",
        "healthcheck.test",
        "spec.readinessProbe.exec",
        _C,
        "CMD: the command; CMD-SHELL and a string: sh -c; NONE: no probe. Unhealthy means "
        "not ready (Docker does not restart unhealthy containers either)",
    ),
    Rule(
        "compose",
        "healthcheck.interval",
        "spec.readinessProbe.periodSeconds",
        _C,
        "whole seconds, rounded up; Docker's default 30s is kept",
    ),
    Rule(
        "compose",
        "healthcheck.timeout",
        "spec.readinessProbe.timeoutSeconds",
        _C,
        "whole seconds, rounded up; Docker's default 30s is kept",
    ),
    Rule("compose", "healthcheck.retries", "spec.readinessProbe.failureThreshold", _C, ""),
    Rule(
        "compose",
        "healthcheck.start_period",
        "spec.readinessProbe.initialDelaySeconds",
        _A,
        "checks start after it, instead of running with failures not counted",
    ),
    Rule(
        "compose",
        "healthcheck.start_interval",
        "-",
        _D,
        "checks run every periodSeconds from the start",
    ),
    Rule("compose", "healthcheck.disable", "-", _C, "true: no probe"),
    Rule(
        "compose",
        "depends_on",
        "-",
        _A,
        "no start order: all Instances start at once and a replica that fails while its "
        "dependency is not up is restarted (with restart: no, dropped)",
    ),
    Rule(
        "compose",
        "user",
        "spec.user",
        _C,
        "names resolve on the host; without it the process runs as nobody",
    ),
    Rule("compose", "working_dir", "spec.workingDir", _C, ""),
    Rule(
        "compose",
        "hostname",
        "-",
        _A,
        "each replica's hostname is its own name (web-0, web-1, ...)",
    ),
    Rule("compose", "domainname", "-", _D, "no DNS domain"),
    Rule(
        "compose",
        "container_name",
        "-",
        _A,
        "replicas are named INSTANCE-ORDINAL (web-0)",
    ),
    Rule(
        "compose",
        "labels",
        "metadata.labels",
        _C,
        "values that are not valid label values become annotations (approximated)",
    ),
    Rule("compose", "annotations", "metadata.annotations", _C, ""),
    Rule("compose", "label_file", "-", _D, "not read: copy the labels into labels"),
    Rule(
        "compose",
        "stop_grace_period",
        "spec.terminationGracePeriodSeconds",
        _C,
        "whole seconds, rounded up",
    ),
    Rule("compose", "stop_signal", "spec.stopSignal", _C, "TERM and SIGTERM alike"),
    Rule(
        "compose",
        "read_only",
        "spec.isolation.readOnlyPaths",
        _A,
        "true: readOnlyPaths [/] (the host's root, read-only inside the replica)",
    ),
    Rule(
        "compose",
        "tmpfs",
        "spec.isolation.privateTmp",
        _C,
        "/tmp: a private /tmp; other paths are dropped",
    ),
    Rule(
        "compose",
        "cap_add",
        "spec.isolation.capabilities",
        _C,
        "ALL: every capability; Docker's default set is not granted",
    ),
    Rule("compose", "cap_drop", "-", _C, "capabilities not listed are dropped already"),
    Rule("compose", "privileged", "-", _D, "no privileged mode: list capabilities instead"),
    Rule(
        "compose",
        "volumes",
        "-",
        _D,
        _HOST + "they see the host's filesystem; a bind mount's source is where the process "
        "finds the data, not its target; named volumes do not exist",
    ),
    Rule("compose", "volumes_from", "-", _D, "no volumes"),
    Rule(
        "compose",
        "secrets",
        "-",
        _D,
        "no /run/secrets: the process can read the file at its host path (the report names it)",
    ),
    Rule("compose", "configs", "-", _D, "no config mounts: as for secrets"),
    Rule(
        "compose",
        "profiles",
        "metadata.labels",
        _A,
        "every service is converted; labelled compose-profile-NAME: 'true', so apply -l can "
        "select a profile",
    ),
    Rule(
        "compose",
        "extends",
        "-",
        _C,
        "the base service's fields are merged in, then converted (file: read relative to the "
        "Compose file)",
    ),
    Rule(
        "compose",
        "networks",
        "-",
        _D,
        _HOST + "they share the node's network; Services give stable addresses",
    ),
    Rule(
        "compose",
        "network_mode",
        "spec.isolation.network",
        _C,
        "host: host, none: none; service:/container: modes are dropped",
    ),
    *_rules(
        "compose",
        _D,
        "-",
        "services reach each other through Service addresses",
        "links",
        "external_links",
    ),
    Rule("compose", "cpus", "spec.resources.limits.cpu", _C, ""),
    Rule("compose", "mem_limit", "spec.resources.limits.memory", _C, ""),
    Rule("compose", "mem_reservation", "spec.resources.requests.memory", _C, ""),
    Rule("compose", "pids_limit", "spec.resources.limits.pids", _C, ""),
    Rule(
        "compose",
        "init",
        "-",
        _C,
        "replicas always run under an init (tini) when the node has one",
    ),
    Rule("compose", "pid", "spec.isolation.namespaces", _C, "host: no pid namespace"),
    Rule("compose", "ipc", "spec.isolation.namespaces", _C, "host: no ipc namespace"),
    Rule("compose", "uts", "spec.isolation.namespaces", _C, "host: no uts namespace"),
    *_rules(
        "compose",
        _D,
        "-",
        "no fine-grained cpu or memory controls beyond cpu, memory and pids",
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpu_shares",
        "cpuset",
        "mem_swappiness",
        "memswap_limit",
        "oom_kill_disable",
        "oom_score_adj",
        "blkio_config",
        "shm_size",
        "ulimits",
        "storage_opt",
    ),
    *_rules(
        "compose",
        _D,
        "-",
        _HOST + "no container runtime, image pulls or platforms",
        "platform",
        "pull_policy",
        "pull_refresh_after",
        "runtime",
        "isolation",
        "cgroup",
        "cgroup_parent",
        "userns_mode",
        "credential_spec",
        "provider",
        "use_api_socket",
        "models",
    ),
    *_rules(
        "compose",
        _D,
        "-",
        "no per-replica DNS or network settings: replicas share the node's",
        "dns",
        "dns_opt",
        "dns_search",
        "extra_hosts",
        "mac_address",
        "sysctls",
    ),
    *_rules(
        "compose",
        _D,
        "-",
        "no equivalent",
        "security_opt",
        "group_add",
        "logging",
        "attach",
        "stdin_open",
        "tty",
        "post_start",
        "pre_stop",
        "develop",
    ),
]

_WORKLOAD = ("Deployment", "ReplicaSet", "ReplicationController", "StatefulSet", "DaemonSet")
K8S_KINDS = [
    *_rules(
        "k8s-kind",
        _C,
        "Instance",
        "one Instance per container (a multi-container pod loses its shared network, volumes "
        "and lifecycle: the report says so)",
        *_WORKLOAD,
        "Pod",
    ),
    Rule("k8s-kind", "Service", "Service", _C, "needs a selector"),
    Rule("k8s-kind", "HorizontalPodAutoscaler", "ScalePolicy", _C, "autoscaling/v1 and v2"),
    Rule(
        "k8s-kind",
        "PrometheusRule",
        "Alert",
        _C,
        "alerting rules over metrics Constellation provides; see Prometheus below",
    ),
    Rule(
        "k8s-kind",
        "Job",
        "-",
        _D,
        "no run-to-completion kind yet (restartPolicy: Never on an "
        "Instance runs once per replica, but nothing counts completions)",
    ),
    Rule("k8s-kind", "CronJob", "-", _D, "no scheduled jobs yet"),
    Rule(
        "k8s-kind",
        "ConfigMap",
        "-",
        _D,
        "no config store: put values in spec.env or files on the node",
    ),
    Rule("k8s-kind", "Secret", "-", _D, "no secret store: put secrets in files on the node"),
    Rule("k8s-kind", "Ingress", "-", _D, "no HTTP routing: a Service gives one address per port"),
    *_rules(
        "k8s-kind",
        _D,
        "-",
        "no volumes: replicas use the node's filesystem",
        "PersistentVolumeClaim",
        "PersistentVolume",
        "StorageClass",
    ),
    Rule(
        "k8s-kind", "Namespace", "-", _D, "namespaces need no object: metadata.namespace is enough"
    ),
    *_rules(
        "k8s-kind",
        _D,
        "-",
        "no API access control",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
    ),
    Rule("k8s-kind", "*", "-", _D, "not supported"),
]

K8S_META = [
    Rule(
        "k8s-meta", "name", "metadata.name", _C, "made a DNS label if it is not one (approximated)"
    ),
    Rule("k8s-meta", "namespace", "metadata.namespace", _C, ""),
    Rule(
        "k8s-meta",
        "labels",
        "metadata.labels",
        _C,
        "a workload's own labels are merged with its template's (the template's win)",
    ),
    Rule("k8s-meta", "annotations", "metadata.annotations", _C, ""),
    Rule("k8s-meta", "generateName", "-", _D, "objects need a name"),
    Rule(
        "k8s-meta",
        "*",
        "-",
        _D,
        "set by the Kubernetes API server; Constellation's store sets its own",
    ),
]

K8S_WORKLOAD = [
    Rule("k8s-workload", "replicas", "spec.replicas", _C, "DaemonSet: see placement"),
    Rule(
        "k8s-workload",
        "selector",
        "-",
        _C,
        "replicas carry the template's labels, which the selector matched",
    ),
    Rule("k8s-workload", "template.metadata.labels", "metadata.labels", _C, ""),
    Rule("k8s-workload", "template.metadata.annotations", "metadata.annotations", _C, ""),
    Rule("k8s-workload", "template.metadata.*", "-", _D, "the Instance names its replicas"),
    Rule("k8s-workload", "template.spec", "see pod spec", _C, ""),
    Rule(
        "k8s-workload",
        "strategy.type",
        "spec.updateStrategy.type",
        _C,
        "RollingUpdate and Recreate",
    ),
    Rule(
        "k8s-workload",
        "strategy.rollingUpdate.maxSurge",
        "spec.updateStrategy.maxSurge",
        _C,
        "",
    ),
    Rule(
        "k8s-workload",
        "strategy.rollingUpdate.maxUnavailable",
        "spec.updateStrategy.maxUnavailable",
        _C,
        "",
    ),
    Rule(
        "k8s-workload",
        "updateStrategy.type",
        "spec.updateStrategy.type",
        _C,
        "RollingUpdate; OnDelete becomes RollingUpdate (approximated)",
    ),
    Rule(
        "k8s-workload",
        "updateStrategy.rollingUpdate.maxUnavailable",
        "spec.updateStrategy.maxUnavailable",
        _C,
        "",
    ),
    Rule(
        "k8s-workload",
        "updateStrategy.rollingUpdate.maxSurge",
        "spec.updateStrategy.maxSurge",
        _C,
        "",
    ),
    Rule("k8s-workload", "updateStrategy.rollingUpdate.partition", "-", _D, "no partitions"),
    Rule(
        "k8s-workload",
        "placement",
        "spec.placement.maxPerNode",
        _A,
        "DaemonSet: maxPerNode: 1 and replicas: 1; raise replicas to the number of nodes",
    ),
    Rule(
        "k8s-workload",
        "serviceName",
        "-",
        _A,
        "StatefulSet: replicas already have stable ordinal names (web-0); no per-replica DNS",
    ),
    Rule(
        "k8s-workload",
        "volumeClaimTemplates",
        "-",
        _D,
        "no volumes: replicas use the node's filesystem",
    ),
    *_rules(
        "k8s-workload",
        _D,
        "-",
        "no equivalent",
        "minReadySeconds",
        "revisionHistoryLimit",
        "progressDeadlineSeconds",
        "paused",
        "podManagementPolicy",
        "persistentVolumeClaimRetentionPolicy",
        "ordinals",
    ),
    Rule("k8s-workload", "status", "-", _C, "observed state: Constellation reports its own"),
]

K8S_POD = [
    Rule("k8s-pod", "containers", "Instance", _C, "one Instance per container"),
    Rule(
        "k8s-pod",
        "initContainers",
        "-",
        _D,
        "no init steps: run them before the command (sh -c 'init && exec app')",
    ),
    Rule("k8s-pod", "ephemeralContainers", "-", _D, "no debug containers"),
    Rule("k8s-pod", "nodeSelector", "spec.placement.nodeSelector", _C, ""),
    Rule("k8s-pod", "affinity", "-", _D, "only nodeSelector and spreading"),
    Rule("k8s-pod", "topologySpreadConstraints", "spec.placement.strategy", _A, "Spread"),
    Rule("k8s-pod", "tolerations", "-", _D, "no taints"),
    Rule("k8s-pod", "nodeName", "-", _D, "the scheduler places replicas"),
    Rule("k8s-pod", "volumes", "-", _D, "no volumes: replicas use the node's filesystem"),
    Rule(
        "k8s-pod",
        "hostNetwork",
        "spec.isolation.network",
        _C,
        "replicas use the node's network already (network: host)",
    ),
    Rule("k8s-pod", "hostPID", "spec.isolation.namespaces", _C, "true: no pid namespace"),
    Rule("k8s-pod", "hostIPC", "spec.isolation.namespaces", _C, "true: no ipc namespace"),
    Rule(
        "k8s-pod",
        "restartPolicy",
        "spec.restartPolicy",
        _C,
        "Always, OnFailure, Never",
    ),
    Rule(
        "k8s-pod",
        "terminationGracePeriodSeconds",
        "spec.terminationGracePeriodSeconds",
        _C,
        "",
    ),
    Rule("k8s-pod", "securityContext.runAsUser", "spec.user", _C, "a uid"),
    Rule("k8s-pod", "securityContext.runAsGroup", "spec.user", _C, "uid:gid"),
    Rule(
        "k8s-pod",
        "securityContext.runAsNonRoot",
        "spec.user",
        _C,
        "replicas run as nobody unless a user is set",
    ),
    Rule("k8s-pod", "securityContext.*", "-", _D, "no equivalent"),
    Rule("k8s-pod", "hostname", "-", _A, "each replica's hostname is its own name"),
    *_rules(
        "k8s-pod",
        _D,
        "-",
        "no cluster DNS, service accounts or API tokens",
        "subdomain",
        "setHostnameAsFQDN",
        "dnsPolicy",
        "dnsConfig",
        "hostAliases",
        "serviceAccountName",
        "serviceAccount",
        "automountServiceAccountToken",
        "enableServiceLinks",
    ),
    *_rules(
        "k8s-pod",
        _D,
        "-",
        _HOST + "no images, runtimes or pod-level scheduling features",
        "imagePullSecrets",
        "runtimeClassName",
        "priorityClassName",
        "priority",
        "preemptionPolicy",
        "schedulerName",
        "overhead",
        "readinessGates",
        "os",
        "hostUsers",
        "schedulingGates",
        "resourceClaims",
        "resources",
        "shareProcessNamespace",
        "activeDeadlineSeconds",
    ),
]

K8S_CONTAINER = [
    Rule("k8s-container", "name", "metadata.name", _C, "POD-CONTAINER for a multi-container pod"),
    Rule(
        "k8s-container",
        "image",
        "-",
        _A,
        IMAGE_NOTE
        + "; without command there is nothing to run: dropped, and a placeholder command "
        "that says so is written",
    ),
    Rule("k8s-container", "imagePullPolicy", "-", _D, "no images are pulled"),
    Rule("k8s-container", "command", "spec.command", _C, ""),
    Rule(
        "k8s-container",
        "args",
        "spec.args",
        _C,
        "without command they follow the image's entrypoint: approximated",
    ),
    Rule("k8s-container", "env", "spec.env", _C, "value only"),
    Rule(
        "k8s-container",
        "env.valueFrom",
        "-",
        _D,
        "no ConfigMaps, Secrets or downward API: set the value",
    ),
    Rule("k8s-container", "envFrom", "-", _D, "no ConfigMaps or Secrets: list the values in env"),
    Rule("k8s-container", "workingDir", "spec.workingDir", _C, ""),
    Rule("k8s-container", "ports.containerPort", "spec.ports.port", _C, ""),
    Rule("k8s-container", "ports.name", "spec.ports.name", _C, "unnamed: PROTOCOL-PORT (tcp-80)"),
    Rule("k8s-container", "ports.protocol", "spec.ports.protocol", _C, "TCP, UDP; SCTP dropped"),
    Rule(
        "k8s-container",
        "ports.hostPort",
        "-",
        _A,
        _HOST + "containerPort is bound on the node's network already",
    ),
    Rule("k8s-container", "ports.hostIP", "-", _D, "no per-port host address"),
    *_rules(
        "k8s-container",
        _C,
        "spec.resources",
        "",
        "resources.requests.cpu",
        "resources.requests.memory",
        "resources.limits.cpu",
        "resources.limits.memory",
    ),
    Rule(
        "k8s-container",
        "resources.*",
        "-",
        _D,
        "only cpu, memory and pids are managed (no ephemeral-storage, GPUs, hugepages)",
    ),
    Rule("k8s-container", "livenessProbe", "spec.livenessProbe", _C, "see probes"),
    Rule("k8s-container", "readinessProbe", "spec.readinessProbe", _C, "see probes"),
    Rule("k8s-container", "startupProbe", "spec.startupProbe", _C, "see probes"),
    Rule("k8s-container", "securityContext.runAsUser", "spec.user", _C, "a uid"),
    Rule("k8s-container", "securityContext.runAsGroup", "spec.user", _C, "uid:gid"),
    Rule(
        "k8s-container",
        "securityContext.runAsNonRoot",
        "spec.user",
        _C,
        "replicas run as nobody unless a user is set",
    ),
    Rule(
        "k8s-container",
        "securityContext.capabilities.add",
        "spec.isolation.capabilities",
        _C,
        "NET_ADMIN becomes CAP_NET_ADMIN",
    ),
    Rule(
        "k8s-container",
        "securityContext.capabilities.drop",
        "-",
        _C,
        "capabilities not listed are dropped already",
    ),
    Rule(
        "k8s-container",
        "securityContext.allowPrivilegeEscalation",
        "spec.isolation.noNewPrivileges",
        _C,
        "the opposite value",
    ),
    Rule(
        "k8s-container",
        "securityContext.readOnlyRootFilesystem",
        "spec.isolation.readOnlyPaths",
        _A,
        "true: readOnlyPaths [/] (the host's root, read-only inside the replica)",
    ),
    Rule("k8s-container", "securityContext.privileged", "-", _D, "no privileged mode"),
    Rule("k8s-container", "securityContext.*", "-", _D, "no equivalent"),
    Rule(
        "k8s-container",
        "volumeMounts",
        "-",
        _D,
        "no volumes: the process sees the node's filesystem",
    ),
    Rule("k8s-container", "volumeDevices", "-", _D, "no volumes"),
    Rule("k8s-container", "lifecycle", "-", _D, "no postStart or preStop hooks"),
    *_rules(
        "k8s-container",
        _D,
        "-",
        "no equivalent",
        "stdin",
        "stdinOnce",
        "tty",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "resizePolicy",
        "restartPolicy",
    ),
]

K8S_PROBE = [
    Rule("k8s-probe", "exec.command", "exec.command", _C, ""),
    Rule("k8s-probe", "httpGet.path", "httpGet.path", _C, ""),
    Rule("k8s-probe", "httpGet.port", "httpGet.port", _C, "a number or a port name"),
    Rule("k8s-probe", "httpGet.scheme", "httpGet.scheme", _C, "HTTP: http, HTTPS: https"),
    Rule("k8s-probe", "httpGet.httpHeaders", "httpGet.headers", _C, ""),
    Rule("k8s-probe", "httpGet.host", "-", _D, "probes connect to the replica's own address"),
    Rule("k8s-probe", "tcpSocket.port", "tcpSocket.port", _C, ""),
    Rule("k8s-probe", "tcpSocket.host", "-", _D, "probes connect to the replica's own address"),
    Rule("k8s-probe", "grpc", "-", _D, "no gRPC probe: the whole probe is dropped"),
    *_rules(
        "k8s-probe",
        _C,
        "same name",
        "",
        "initialDelaySeconds",
        "periodSeconds",
        "timeoutSeconds",
        "successThreshold",
        "failureThreshold",
    ),
    Rule("k8s-probe", "terminationGracePeriodSeconds", "-", _D, "the Instance's applies"),
]

K8S_SERVICE = [
    Rule("k8s-service", "selector", "spec.selector", _C, "without one there is no Service"),
    Rule("k8s-service", "ports.port", "spec.ports.port", _C, ""),
    Rule(
        "k8s-service",
        "ports.targetPort",
        "spec.ports.targetPort",
        _C,
        "a number or a port name",
    ),
    Rule("k8s-service", "ports.name", "spec.ports.name", _C, "unnamed: PROTOCOL-PORT (tcp-80)"),
    Rule("k8s-service", "ports.protocol", "spec.ports.protocol", _C, "TCP, UDP; SCTP dropped"),
    Rule("k8s-service", "ports.nodePort", "-", _D, "no node ports"),
    Rule("k8s-service", "ports.appProtocol", "-", _D, "no equivalent"),
    Rule(
        "k8s-service",
        "type",
        "-",
        _C,
        "ClusterIP; NodePort and LoadBalancer are approximated by the one kind of Service",
    ),
    Rule(
        "k8s-service",
        "clusterIP",
        "-",
        _A,
        "Constellation assigns the address; None (headless) is approximated",
    ),
    Rule(
        "k8s-service",
        "sessionAffinity",
        "spec.loadBalancing.policy",
        _C,
        "ClientIP: SourceHash",
    ),
    Rule("k8s-service", "*", "-", _D, "no equivalent"),
]

K8S_HPA = [
    Rule(
        "k8s-hpa",
        "scaleTargetRef",
        "spec.targetRef",
        _C,
        "a Deployment, StatefulSet, ReplicaSet or ReplicationController's Instance",
    ),
    Rule("k8s-hpa", "minReplicas", "spec.minReplicas", _C, "default 1"),
    Rule("k8s-hpa", "maxReplicas", "spec.maxReplicas", _C, ""),
    Rule(
        "k8s-hpa",
        "targetCPUUtilizationPercentage",
        "spec.metrics (cpu, averageUtilization)",
        _C,
        "",
    ),
    Rule(
        "k8s-hpa",
        "metrics.Resource",
        "spec.metrics",
        _C,
        "cpu and memory, Utilization or AverageValue",
    ),
    Rule(
        "k8s-hpa",
        "metrics.ContainerResource",
        "spec.metrics",
        _A,
        "as Resource: each container is its own Instance",
    ),
    Rule(
        "k8s-hpa",
        "metrics.Pods",
        "spec.metrics (custom, averageValue)",
        _A,
        "the metric name is kept; Constellation must provide a metric of that name (no "
        "metrics adapter); metric.selector is dropped",
    ),
    *_rules(
        "k8s-hpa",
        _D,
        "-",
        "only metrics measured on the replicas themselves",
        "metrics.Object",
        "metrics.External",
    ),
    Rule(
        "k8s-hpa",
        "behavior.stabilizationWindowSeconds",
        "spec.behavior.*.stabilizationWindowSeconds",
        _C,
        "scaleUp and scaleDown",
    ),
    Rule(
        "k8s-hpa",
        "behavior.policies",
        "spec.behavior.*.maxChangePerMinute",
        _A,
        "Pods policies as replicas per minute (the smallest); Percent policies dropped",
    ),
    Rule("k8s-hpa", "behavior.selectPolicy", "-", _D, "no policy selection"),
]

PROMETHEUS = [
    Rule(
        "prometheus",
        "rules.alert",
        "Alert metadata.name",
        _C,
        "made a DNS label (HighErrorRate: higherrorrate); repeated names get -2, -3",
    ),
    Rule(
        "prometheus",
        "rules.expr",
        "spec.expr",
        _C,
        "only when every metric it reads is one Constellation provides; otherwise the rule "
        "is dropped and the report names the metrics",
    ),
    Rule(
        "prometheus",
        "rules.for",
        "spec.for",
        _C,
        "days and weeks become hours (1d: 24h)",
    ),
    Rule(
        "prometheus",
        "rules.labels",
        "spec.labels",
        _C,
        "severity (critical, warning, info) becomes spec.severity; templated values are dropped",
    ),
    Rule(
        "prometheus",
        "rules.annotations",
        "spec.annotations",
        _C,
        "Go templates ({{ $value }}) are kept as text, not expanded",
    ),
    Rule("prometheus", "rules.keep_firing_for", "-", _D, "alerts resolve when expr stops holding"),
    Rule("prometheus", "rules.record", "-", _D, "no recording rules"),
    Rule(
        "prometheus",
        "groups.name",
        "metadata.annotations[prometheus-group]",
        _C,
        "kept as an annotation on each Alert",
    ),
    *_rules(
        "prometheus",
        _D,
        "-",
        "each Alert is evaluated on Constellation's own schedule",
        "groups.interval",
        "groups.query_offset",
        "groups.limit",
    ),
    Rule("prometheus", "groups.labels", "spec.labels", _C, "added to each rule's labels"),
    Rule(
        "prometheus",
        "metadata",
        "Alert metadata.namespace, labels",
        _C,
        "PrometheusRule: namespace and labels carry over to each Alert",
    ),
]

RULES: Final = (
    *COMPOSE_FILE,
    *COMPOSE,
    *K8S_KINDS,
    *K8S_META,
    *K8S_WORKLOAD,
    *K8S_POD,
    *K8S_CONTAINER,
    *K8S_PROBE,
    *K8S_SERVICE,
    *K8S_HPA,
    *PROMETHEUS,
)
_BY_FIELD: Final = {(rule.section, rule.field): rule for rule in RULES}


def lookup(section: str, field: str) -> Rule | None:
    """The rule for `field`, else the nearest `prefix.*` rule above it, else None."""
    exact = _BY_FIELD.get((section, field))
    if exact is not None:
        return exact
    parts = field.split(".")
    for end in range(len(parts), 0, -1):
        wildcard = _BY_FIELD.get((section, ".".join([*parts[: end - 1], "*"])))
        if wildcard is not None:
            return wildcard
    # Compose extension fields: `x-anything` at any level.
    return _BY_FIELD.get((section, "x-*")) if parts[-1].startswith("x-") else None


def rule(section: str, field: str) -> Rule:
    """The rule the converter names; a missing one is a bug in the converter."""
    found = _BY_FIELD.get((section, field))
    if found is None:
        raise KeyError(f"no mapping rule {section}: {field}")
    return found


def markdown_table(section: str) -> str:
    """The section's rows as docs/migration.md shows them."""
    rows = [
        "| field | Constellation | result | how, or why not |",
        "|---|---|---|---|",
    ]
    for each in RULES:
        if each.section == section:
            target = "-" if each.target == "-" else f"`{each.target}`"
            rows.append(f"| `{each.field}` | {target} | {each.status} | {each.note} |")
    return "\n".join(rows)
