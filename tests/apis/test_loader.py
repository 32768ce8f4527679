"""The manifest loader: lines of fields, one line per error, other systems' files recognised,
and nothing but ManifestError(s) for any text at all."""

from __future__ import annotations

import io
import json
import re
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from constellation.apis import loader
from constellation.apis.alert import Alert
from constellation.apis.instance import Instance
from constellation.apis.loader import (
    Document,
    ManifestError,
    ManifestErrors,
    load_objects,
    parse_documents,
)
from constellation.apis.meta import Resource
from tests.apis import strategies

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
CORPUS_FILES = sorted(p for p in CORPUS.glob("*/*") if p.is_file())
# Every message is one line: `source:line: text`.
MESSAGE = re.compile(r"^(?P<source>[^\n]+?):(?P<line>[0-9]+): (?P<text>[^\n]+)$")


def yaml_text(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


def errors_of(text: str, source: str = "app.yaml") -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_objects(text, source)
    return caught.value.messages


def dump_all(documents: list[Any]) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    # Escaped, not raw: the C parser reads a raw NEL (U+0085) in a scalar as a line break.
    yaml.allow_unicode = False
    # Unfolded, as the CLI's dumper: ruamel can fold an escaped string without its "\".
    yaml.width = 2**30
    out = io.StringIO()
    yaml.dump_all(documents, out)
    return out.getvalue()


APP = yaml_text("""
    # A web server and an alert on it.
    apiVersion: constellation.dev/v1
    kind: Instance
    metadata:
      name: web
      labels:
        app: web
    spec:
      replicas: 2
      command: ["python3", "-m", "http.server"]
      env:
        - name: PORT
          value: "8080"
        - name: MODE
          value: prod
      resources:
        limits:
          memory: 64Mi
      ports:
        - name: http
          port: 8080
    ---
    ---
    # comments only
    ---
    apiVersion: constellation.dev/v1
    kind: Alert
    metadata:
      name: web-down
    spec:
      expr: up == 0
      for: 5m
    """)


# --- lines -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_documents() -> list[Document]:
    return parse_documents(APP, "app.yaml")


def test_empty_documents_are_skipped(app_documents: list[Document]) -> None:
    assert [doc.data["kind"] for doc in app_documents] == ["Instance", "Alert"]
    assert [doc.line for doc in app_documents] == [2, 26]
    assert all(doc.source == "app.yaml" for doc in app_documents)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ((), 2),
        (("kind",), 3),
        (("metadata", "labels", "app"), 7),
        (("spec", "resources", "limits", "memory"), 18),
        (("spec", "env", 1), 14),
        (("spec", "env", 1, "value"), 15),
        (("spec", "ports", 0, "port"), 21),
        (("spec", "command", 2), 10),
        # Missing fields point at the nearest parent that exists.
        (("spec", "resources", "limits", "cpu"), 17),
        (("spec", "env", 5, "name"), 11),
        (("status", "conditions"), 2),
    ],
)
def test_line_of_fields(app_documents: list[Document], path: tuple[Any, ...], line: int) -> None:
    assert app_documents[0].line_of(path) == line


def test_line_of_fields_in_a_later_document(app_documents: list[Document]) -> None:
    alert = app_documents[1]
    assert alert.line_of(("spec", "for")) == 32
    assert alert.line_of(("spec", "severity")) == 30


def test_data_is_plain_python() -> None:
    text = "a: 1\nb: [1.5, true, null, '3', 2024-01-01]\nc: {d: x}\n"
    (doc,) = parse_documents(text, "x.yaml")
    assert doc.data == {"a": 1, "b": [1.5, True, None, "3", "2024-01-01"], "c": {"d": "x"}}

    def types(value: Any) -> set[type]:
        if isinstance(value, dict):
            return {dict}.union(*(types(v) for v in value.values()), *(types(k) for k in value))
        if isinstance(value, list):
            return {list}.union(*(types(v) for v in value))
        return {type(value)}

    assert types(doc.data) <= {dict, list, str, int, float, bool, type(None)}


def test_yaml_1_2_and_kubernetes_habits() -> None:
    text = "yes: no\non: off\n80: http\nn: 0x1F\nm: 0o17\nt: 2024-05-01T12:00:00Z\n"
    (doc,) = parse_documents(text, "x.yaml")
    # `yes`/`on` are strings (YAML 1.2), keys are text, timestamps stay as written.
    assert doc.data == {"yes": "no", "on": "off", "80": "http", "n": 31, "m": 15, "t": text[-21:-1]}


def test_merge_keys_and_their_lines() -> None:
    text = yaml_text("""
        base: &base
          command: [sleep, "1"]
          user: nobody
        spec:
          <<: *base
          user: root
        """)
    (doc,) = parse_documents(text, "x.yaml")
    assert doc.data["spec"] == {"user": "root", "command": ["sleep", "1"]}
    assert doc.line_of(("spec", "user")) == 6
    assert doc.line_of(("spec", "command")) == 2  # where the merged value was written


# --- YAML errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("a: 1\nb: [1, 2\n", 3, "expected ',' or ']'"),
        ("a: 1\nmetadata:\n\tname: x\n", 3, "indent with spaces"),
        ("a:\n  b: 1\n  b: 2\n", 3, 'duplicate key "b" (first on line 2)'),
        ("- a\n- b\n", 1, "must be a mapping"),
        ("just text\n", 1, 'not the string "just text"'),
        ("a: !Ref x\n", 1, "unsupported YAML tag !Ref"),
        ("a: &x [*x]\n", 1, "an alias refers to a collection that contains it"),
        ("a: *nowhere\n", 1, "undefined alias"),
        ("? [a]\n: b\n", 1, "a mapping key must be text"),
        ("name: {{ .Values.name }}\n", 1, "template (Helm, Go): render it first"),
        ("a:\n  " + "[" * 50_000, 2, f"nested deeper than {loader.MAX_DEPTH} levels"),
    ],
)
def test_yaml_errors_are_one_line_with_the_line(text: str, line: int, expected: str) -> None:
    (message,) = errors_of(text, "bad.yaml")
    match = MESSAGE.match(message)
    assert match, message
    assert (match["source"], int(match["line"])) == ("bad.yaml", line)
    assert expected in match["text"]


def test_a_syntax_error_still_reports_the_documents_before_it() -> None:
    text = "apiVersion: apps/v1\nkind: Deployment\n---\na: [\n"
    messages = errors_of(text, "d.yaml")
    assert len(messages) == 2
    assert messages[0].startswith("d.yaml:1: apps/v1 Deployment is not a Constellation kind")
    assert messages[1].startswith("d.yaml:5: ")


def test_aliases_cannot_expand_without_bound() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    started = time.perf_counter()
    (message,) = errors_of("\n".join(lines) + "\n")
    assert "aliases expanding" in message
    assert time.perf_counter() - started < 5


# --- validation errors -----------------------------------------------------------------------


BAD_INSTANCE = yaml_text("""
    apiVersion: constellation.dev/v1
    kind: Instance
    metadata:
      nmae: web
    spec:
      command: ls
      replicas: "3"
      restartPolicy: Sometimes
      resources:
        limits:
          memory: 64MB
      ports:
        - name: http
          port: 80
        - name: HTTP
      isolation:
        namespace: [pid]
    """)


def test_validation_errors_name_file_line_and_field() -> None:
    assert errors_of(BAD_INSTANCE) == [
        "app.yaml:3: metadata.name: required field missing",
        'app.yaml:4: metadata.nmae: unknown field (did you mean "name"?)',
        'app.yaml:6: spec.command: expected a list, got the string "ls"',
        'app.yaml:7: spec.replicas: expected an integer, got the string "3"',
        'app.yaml:8: spec.restartPolicy: must be one of "Always", "OnFailure" or "Never", '
        'got the string "Sometimes"',
        'app.yaml:11: spec.resources.limits.memory: invalid quantity "64MB" (did you mean "64Mi"?)',
        'app.yaml:15: spec.ports[1].name: invalid port name "HTTP": use at most 15 lowercase '
        "letters, digits and '-' (at least one letter, no '--', not starting or ending with '-')",
        'app.yaml:17: spec.isolation.namespace: unknown field (did you mean "namespaces"?)',
    ]


def test_aliased_fields_use_the_name_users_write() -> None:
    text = "apiVersion: constellation.dev/v1\nkind: Alert\nmetadata: {name: a}\n"
    text += "spec:\n  expr: up == 0\n  for: soon\n  fro: 5m\n"
    messages = errors_of(text)
    assert messages[0].startswith('app.yaml:6: spec.for: invalid duration "soon"')
    assert messages[1] == 'app.yaml:7: spec.fro: unknown field (did you mean "for"?)'


def test_keys_that_are_not_identifiers_are_quoted_in_paths() -> None:
    text = "apiVersion: constellation.dev/v1\nkind: Alert\nmetadata:\n  name: a\n  labels:\n"
    text += "    'bad key!': x\nspec: {expr: up}\n"
    (message,) = errors_of(text)
    assert message.startswith("app.yaml:6: metadata.labels[\"bad key!\"]: invalid key 'bad key!'")


def test_union_type_errors_are_merged() -> None:
    text = "apiVersion: constellation.dev/v1\nkind: Instance\nmetadata: {name: w}\n"
    text += "spec:\n  command: [x]\n  updateStrategy:\n    maxSurge: [1]\n"
    (message,) = errors_of(text)
    assert message.startswith("app.yaml:7: spec.updateStrategy.maxSurge: ")
    assert "maxSurge: maxSurge" not in message


def test_one_bad_document_among_good_ones_reports_only_its_errors() -> None:
    good = APP
    bad = "apiVersion: constellation.dev/v1\nkind: Alert\nmetadata: {name: x}\nspec: {expr: 1}\n"
    text = good + "---\n" + bad + "---\n" + good
    first_bad_line = good.count("\n") + 2
    messages = errors_of(text)
    assert messages == [
        f"app.yaml:{first_bad_line + 3}: spec.expr: expected a string, got the number 1"
    ]
    objects = load_objects(good + "---\n" + good.replace("name: web", "name: web2"), "ok.yaml")
    assert [type(o) for o in objects] == [Instance, Alert, Instance, Alert]


def test_errors_of_every_document_are_collected_in_order() -> None:
    text = "apiVersion: constellation.dev/v1\nkind: Alert\nmetadata: {name: A}\nspec: {expr: x}\n"
    text += "---\napiVersion: v1\nkind: Service\n---\napiVersion: constellation.dev/v1\n"
    text += "kind: Alert\nmetadata: {name: b}\nspec: {}\n"
    messages = errors_of(text)
    assert [int(MESSAGE.match(m)["line"]) for m in messages] == [3, 6, 12]  # type: ignore[index]
    assert "invalid name 'A'" in messages[0]
    assert "v1 Service is not a Constellation kind" in messages[1]
    assert messages[2] == "app.yaml:12: spec.expr: required field missing"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "apiVersion: apps/v1\nkind: Deployment\n",
            "deploy.yaml:1: apps/v1 Deployment is not a Constellation kind; "
            "convert it with: constellation convert -f deploy.yaml",
        ),
        (
            "# compose\nservices:\n  web:\n    image: nginx\n",
            "deploy.yaml:2: this looks like a Docker Compose file, not a Constellation manifest; "
            "convert it with: constellation convert -f deploy.yaml",
        ),
        (
            "groups:\n- name: x\n  rules: []\n",
            "deploy.yaml:1: this looks like a Prometheus rules file, not a Constellation "
            "manifest; convert it with: constellation convert -f deploy.yaml",
        ),
        (
            "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n",
            "deploy.yaml:1: monitoring.coreos.com/v1 PrometheusRule is not a Constellation kind; "
            "convert it with: constellation convert -f deploy.yaml",
        ),
        (
            "kind: Instance\nmetadata: {name: x}\n",
            'deploy.yaml:1: apiVersion: required field missing (use "constellation.dev/v1")',
        ),
        (
            "apiVersion: constellation.dev/v2\nkind: Instance\n",
            'deploy.yaml:1: apiVersion: unsupported version "constellation.dev/v2" '
            '(use "constellation.dev/v1")',
        ),
        (
            "apiVersion: constellation.dev/v1\nmetadata: {name: x}\n",
            "deploy.yaml:1: kind: required field missing (one of Instance, Service, ScalePolicy, "
            "Alert, Replica, Node, Event)",
        ),
        (
            "apiVersion: constellation.dev/v1\nkind: Instanse\n",
            'deploy.yaml:2: kind: unknown kind "Instanse" (did you mean "Instance"?); '
            "Constellation kinds are Instance, Service, ScalePolicy, Alert, Replica, Node, Event",
        ),
        (
            "metadata: {name: x}\n",
            "deploy.yaml:1: not a Constellation manifest: apiVersion and kind are missing (use "
            "apiVersion: constellation.dev/v1 and a kind: Instance, Service, ScalePolicy, Alert)",
        ),
    ],
)
def test_kinds_that_are_not_ours(text: str, expected: str) -> None:
    assert errors_of(text, "deploy.yaml") == [expected]


def test_server_set_fields_and_status_round_trip() -> None:
    """What `get -o yaml` prints loads again: uid, resourceVersion, timestamps, status."""
    (instance,) = load_objects(APP.split("---")[0], "app.yaml")
    live = instance.to_dict()
    live["metadata"].update(
        uid="7f1c", resourceVersion="42", generation=3, creationTimestamp="2024-05-01T12:00:00Z"
    )
    live["status"] = {"replicas": 2, "readyReplicas": 1, "observedGeneration": 3}
    (again,) = load_objects(dump_all([live]), "get.yaml")
    assert again.to_dict() == Instance.model_validate(live).to_dict()


# --- the corpus: other systems' real files ---------------------------------------------------

_FOREIGN = re.compile(
    r"is not a Constellation kind|looks like a (Docker Compose file|Prometheus rules file|"
    r"JSON Schema), not a Constellation manifest"
)


def test_the_corpus_is_there() -> None:
    assert len(CORPUS_FILES) > 50, f"no corpus at {CORPUS}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_corpus_file_is_recognised_as_not_a_manifest(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    messages = errors_of(text, path.name)
    assert messages
    for message in messages:
        match = MESSAGE.match(message)
        assert match and match["source"] == path.name, message
        assert 1 <= int(match["line"]) <= text.count("\n") + 1, message
    foreign = [m for m in messages if _FOREIGN.search(m)]
    # A file ruamel cannot read still gets a clean line; every file it can read is named.
    assert foreign or len(messages) == 1, messages
    assert all("constellation convert" in m for m in foreign), messages


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("services:\n  web:\n\timage: nginx\n", 3),  # a tab
        ("apiVersion: v1\nkind: Service\nkind: Pod\n", 3),  # duplicate key
        ("apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n", 4),
        ("apiVersion: v1\nkind: Service\n{{- if .Values.x }}\nspec: {}\n{{- end }}\n", 4),
    ],
)
def test_corpus_like_files_yaml_rejects(text: str, line: int) -> None:
    (message,) = errors_of(text, "k.yaml")
    match = MESSAGE.match(message)
    assert match and int(match["line"]) == line, message


# --- properties ------------------------------------------------------------------------------


def assert_clean(error: ManifestError, source: str, text: str) -> None:
    assert error.messages
    for message in error.messages:
        match = MESSAGE.match(message)
        assert match, repr(message)
        assert match["source"] == source
        assert 1 <= int(match["line"]) <= max(text.count("\n"), len(text.splitlines())) + 1


def load_or_errors(text: str) -> list[Resource]:
    try:
        return load_objects(text, "fuzz.yaml")
    except ManifestError as error:
        assert_clean(error, "fuzz.yaml", text)
        return []


yaml_characters = st.sampled_from(list(":-[]{},&*!|>'\"%@`#?<= \t\n\r.0123456789abcxyz~"))
yaml_like_text = st.lists(
    st.sampled_from(
        [
            "apiVersion: constellation.dev/v1\n",
            "kind: Instance\n",
            "metadata:\n",
            "  name: web\n",
            "spec:\n",
            "  command: [a]\n",
            "---\n",
            "- ",
            "  ",
            "&a ",
            "*a",
            "!!str ",
            "<<: ",
            "{",
            "}",
            "[",
            "]",
            ": ",
            "\t",
            "'",
            '"',
            "|\n",
            "%YAML 1.2\n",
            "? ",
            "{{ x }}",
        ]
    )
    | st.text(yaml_characters, max_size=5)
).map("".join)

fuzz_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@fuzz_settings
@given(st.text(max_size=300) | yaml_like_text)
def test_any_text_gives_objects_or_clean_errors(text: str) -> None:
    load_or_errors(text)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=10),
    st.sampled_from(["constellation.dev/v1", "Instance", "Alert", "64MB", "250m", "3", "for"]),
)
yamlish = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["apiVersion", "kind", "metadata", "name", "spec", "command"])
            | st.text(max_size=8),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@fuzz_settings
@given(yamlish)
def test_any_yaml_data_gives_objects_or_clean_errors(data: Any) -> None:
    load_or_errors(dump_all([data]))


@fuzz_settings
@given(st.data())
def test_broken_manifests_give_clean_errors(data: st.DataObject) -> None:
    """A valid manifest with one field replaced by anything: objects or clean errors."""
    manifest = data.draw(strategies.any_manifest)
    node: Any = manifest
    while isinstance(node, dict | list) and node and data.draw(st.booleans()):
        key = data.draw(
            st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
        )
        if not isinstance(node[key], dict | list):
            break
        node = node[key]
    if isinstance(node, dict):
        node[data.draw(st.sampled_from([*node, "extra"]))] = data.draw(yamlish)
    load_or_errors(dump_all([manifest]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(strategies.any_manifest, min_size=1, max_size=3))
def test_valid_manifests_load_as_their_models_do(manifests: list[dict[str, Any]]) -> None:
    for index, manifest in enumerate(manifests):
        manifest["metadata"]["name"] += f"-{index}"
    objects = load_objects(dump_all(manifests), "valid.yaml")
    assert [o.to_dict() for o in objects] == [
        type(o).model_validate(m).to_dict() for o, m in zip(objects, manifests, strict=True)
    ]


# --- both YAML parsers, and size -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [APP, BAD_INSTANCE, "a: &x [*x]\n", "[" * 5_000, "services: {}\n", "a:\n b: 1\n b: 2\n"],
)
def test_the_pure_python_parser_gives_the_same_answers(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ruamel.yaml.clib, ruamel parses in Python: same objects, same errors."""

    def outcome() -> list[str]:
        try:
            return [json.dumps(o.to_dict()) for o in load_objects(text, "x.yaml")]
        except ManifestError as error:
            return error.messages

    fast = outcome()
    monkeypatch.setattr(loader, "_PURE_PYTHON", True)
    assert outcome() == fast


def test_a_thousand_objects_load() -> None:
    """Well under 1 s with ruamel's C parser (about 0.25 s here); the bound only catches
    something going quadratic, and leaves room for the pure-Python parser on a slow CI."""
    template = APP.split("---")[0]
    text = "---\n".join(template.replace("name: web", f"name: web-{i}") for i in range(1000))
    started = time.perf_counter()
    objects = load_objects(text, "big.yaml")
    elapsed = time.perf_counter() - started
    assert len(objects) == 1000
    assert objects[999].metadata.name == "web-999"
    assert elapsed < 15, elapsed


def test_manifest_errors_is_a_manifest_error() -> None:
    errors = ManifestErrors(["a.yaml:1: x", "a.yaml:2: y"])
    assert isinstance(errors, ManifestError)
    assert errors.messages == ["a.yaml:1: x", "a.yaml:2: y"]
    assert str(errors) == "a.yaml:1: x\na.yaml:2: y"
    assert ManifestError("a.yaml:1: z").messages == ["a.yaml:1: z"]
