"""The JSON Schemas: the matrix's accepts what `validate` accepts (every matrix in the
repository, variables and all) and refuses the bad corpus wherever a schema can say so;
report.json's describes every report the suite writes (checked at the end of each run by
tests/conftest.py, and here on a real run)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probe_engine import SpecError
from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.spec import load_matrix_text
from probe_engine.spec.schema import matrix_schema, report_schema
from probe_engine.spec.yamlfile import read_yaml

from .conftest import reports_invalid_for_the_schema

REPO = Path(__file__).resolve().parents[1]
BAD = REPO / "tests" / "data" / "bad"
MATRIX_SCHEMA = matrix_schema()
VALIDATOR = jsonschema.Draft202012Validator(MATRIX_SCHEMA)


def matrix_files() -> list[Path]:
    files = [
        *sorted((REPO / "configs").glob("*.yaml")),
        REPO / "probe_engine" / "demo" / "matrix.yaml",
        *sorted((REPO / "examples").rglob("*.yaml")),
        *sorted((REPO / "tests" / "airflow_dags" / "matrices").glob("*.yaml")),
    ]
    assert len(files) >= 5
    return files


def snippets() -> list[tuple[str, str]]:
    """The ```yaml blocks of README.md and docs/ that are whole matrices."""
    found = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", page.read_text(), re.S)):
            if re.search(r"^sources:", block, re.M) and re.search(r"^targets:", block, re.M):
                found.append((f"{page.relative_to(REPO)}#{index}", block))
    assert len(found) >= 3
    return found


def schema_errors(data: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:160]}"
        for e in VALIDATOR.iter_errors(data)
    ]


def test_the_schemas_are_valid_json_schemas() -> None:
    jsonschema.Draft202012Validator.check_schema(MATRIX_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(report_schema())


@pytest.mark.parametrize("path", matrix_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_matrix_file_fits_the_schema(path: Path) -> None:
    assert schema_errors(read_yaml(path.read_text(), str(path))) == []


@pytest.mark.parametrize(("where", "text"), snippets(), ids=[w for w, _t in snippets()])
def test_every_matrix_in_the_docs_fits_the_schema(where: str, text: str) -> None:
    assert schema_errors(read_yaml(text, where)) == []


# Bad files a schema cannot refuse, and why; every other bad file must be refused.
NOT_FOR_A_SCHEMA = {
    # Not YAML, or not readable within the limits: the editor's YAML parser reports them.
    "invalid-yaml.yaml": "invalid YAML",
    "tab-indent.yaml": "invalid YAML",
    "two-documents.yaml": "a second document is a YAML stream matter",
    "not-utf8.yaml": "not text",
    "billion-laughs.yaml": "a limit on the loader, not on the values",
    "deep-nesting.yaml": "a limit on the loader, not on the values",
    # A schema sees one value at a time, never the file or the environment.
    "duplicate-source.yaml": "JSON has no duplicate keys (the editor's YAML parser flags them)",
    "undefined-source.yaml": "a name in expect: must match a declared source: a reference",
    "undefined-target.yaml": "a name in exclude: must match a declared target: a reference",
    "missing-variable.yaml": "whether ${NAME} is set is known when the matrix is loaded",
    "too-many-cells.yaml": "the cell count is a product of sources and columns",
    "bad-port-range.yaml": '"900-100": low before high is an order between two numbers',
    "nul-character.yaml": "a description takes any text",
}


@pytest.mark.parametrize("name", sorted(p.name for p in BAD.glob("*.yaml")))
def test_the_bad_corpus_is_refused_by_the_schema_where_a_schema_can_say_so(name: str) -> None:
    path = BAD / name
    try:
        data = read_yaml(path.read_bytes().decode("utf-8"), name)
    except (SpecError, UnicodeDecodeError):
        assert name in NOT_FOR_A_SCHEMA, f"{name} is not YAML: pin it with why"
        return
    errors = schema_errors(data)
    if name in NOT_FOR_A_SCHEMA:
        assert errors == [], f"the schema now refuses {name}: unpin it"
    else:
        assert errors, f"the schema accepts {name}, which validate refuses"


def test_every_property_has_a_description_and_the_schema_an_example() -> None:
    missing = [
        f"{model}.{name}"
        for model, definition in [("Matrix", MATRIX_SCHEMA), *MATRIX_SCHEMA["$defs"].items()]
        for name, prop in definition.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert missing == []
    assert schema_errors(MATRIX_SCHEMA["examples"][0]) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", "${NODE_PORT:-30080}"),
        ("port", "8080"),
        ("timeout", "1m30s"),
        ("timeout", "${T}"),
        ("timeout", 2),
        ("family", "${FAMILY}"),
        ("host", "${NODE_IP}"),
    ],
)
def test_values_from_variables_and_durations_as_text_fit(field: str, value: Any) -> None:
    target = {"kind": "tcp", "host": "127.0.0.1", "port": 1, field: value}
    data = {"sources": {"here": {"kind": "local"}}, "targets": {"t": target}}
    assert schema_errors(data) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", 0),
        ("port", "70000"),
        ("port", True),
        ("timeout", "2 minutes"),
        ("timeout", "0s"),
        ("family", "ipv5"),
        ("host", "http://127.0.0.1"),
        ("host", "a b"),
        ("kind", "${KIND}"),
    ],
)
def test_values_validate_refuses_the_schema_refuses(field: str, value: Any) -> None:
    target = {"kind": "tcp", "host": "127.0.0.1", "port": 1, field: value}
    data = {"sources": {"here": {"kind": "local"}}, "targets": {"t": target}}
    assert schema_errors(data) != []


def test_schema_report_flag_prints_report_json_schema() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "probe_engine", "schema", "--report"],
        capture_output=True,
        text=True,
        check=True,
    )
    schema = json.loads(run.stdout)
    assert schema["title"] == "probe-engine report.json"
    assert {"schema_version", "cells", "summary", "findings"} <= set(schema["properties"])


def test_a_real_run_writes_a_report_that_fits_its_schema(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        """
sources: {here: {kind: local}, curl: {kind: shell, tool: curl}}
targets:
  api: {kind: http, url: "http://127.0.0.1:${PE_DEMO_HTTP_PORT}/health"}
  closed: {kind: tcp, host: 127.0.0.1, port: "${PE_DEMO_CLOSED_PORT}"}
  name: {kind: dns, name: localhost}
expect: [{target: closed, status: refused}]
"""
    )
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **loopback.variables()}
    run = subprocess.run(
        [sys.executable, "-m", "probe_engine", "run", str(matrix), "--out", str(tmp_path / "out"),
         "--output", "none", "--format", "json"],
        capture_output=True, text=True, check=False, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "report.json").exists()
    assert reports_invalid_for_the_schema(tmp_path) == []
    assert reports_invalid_for_the_schema(REPO / "tests" / "data" / "reports") == []


# -- the schema and validate agree -------------------------------------------------------------
# Matrices built from values each field may or may not take (no value whose verdict only
# validate can reach: see NOT_FOR_A_SCHEMA); the schema must accept exactly those validate does.

ENVIRON = {
    "PORT": "80",
    "HOST": "127.0.0.1",
    "DURATION": "2s",
    "FAMILY": "any",
    "FLAG": "true",
    "URL": "http://127.0.0.1/",
    "METHOD": "GET",
    "TOOL": "curl",
    "N": "8",
    "STATUS": "ok",
    "NS": "10.96.0.10:53",
}
# field -> (values validate accepts, values it refuses), per kind.
HOST = (
    ["127.0.0.1", "::1", "api.example.com", "my_svc", "localhost.", "${HOST}"],
    ["a b", "http://x", "[::1]", "x:80", "1.2.3.300", "-a", "", 5, True, None, "10.0.0"],
)
DURATION = (
    ["2s", "1m30s", 2, 0.5, "${DURATION}", "500ms", "1h"],
    ["0s", "2 s", -1, True, "1s1m", "", "1m30"],
)
FLAG = ([True, False, "true", "FALSE", "${FLAG}"], ["yes", "no", "on", 1, None, "1"])
FIELDS: dict[str, dict[str, tuple[list[Any], list[Any]]]] = {
    "tcp": {
        "host": HOST,
        "port": ([1, 65535, "80", "080", "${PORT}"], [0, 65536, "x", True, 1.5, "-1", " 80", None]),
        "timeout": DURATION,
        "family": (["any", "ipv4", "${FAMILY}"], ["ipv5", 4]),
        "description": (["x", "${HOST}"], [5, True]),
    },
    "http": {
        "url": (["http://127.0.0.1/", "HTTPS://a.b:8443/x?y", "${URL}", "http://[::1]:80/"],
                ["ftp://x", "http://a b/", "http:///x", 5, "127.0.0.1"]),
        "verify_tls": FLAG,
        "expect_status": ([[200], [100, 599], ["200"], []], [[99], [600], "200", [True]]),
        "method": (["GET", "post", "${METHOD}"], ["G ET", 5, ""]),
        "headers": ([{"X-A": "b"}, {}], [{"X A": "b"}, {"X": "a\nb"}, {"X": 5}]),
        "timeout": DURATION,
    },
    "dns": {
        "name": HOST,
        "nameserver": (["10.96.0.10:53", "10.96.0.10", "[::1]:53", "::1", "${NS}"],
                       ["x:53", "10.0.0.1:99999", "10.0.0.1:0", 53]),
        "ndots": ([0, 15, "5"], [16, -1, "x", 1.0]),
        "expect_addresses": ([["127.0.0.1"], ["::1"], []], [["x"], "127.0.0.1"]),
    },
    "local": {"trust_env": FLAG, "http_client": (["requests", "curl"], ["x", 1])},
    "process": {
        "env": ([{"A": "b"}, {"A": "${HOST}"}, {}], [{"A": 5}, {"A=B": "c"}, {"A": None}]),
        "python": (["python3"], [5]),
        "inherit_env": FLAG,
    },
    "shell": {"tool": (["curl", "nc", "${TOOL}"], ["telnet", 5]), "inherit_env": FLAG},
    "defaults": {
        "timeout": DURATION,
        "concurrency": ([1, 100000, "8", "${N}"], [0, 100001, 2.0, "x"]),
        "http_client": (["requests", "httpx"], ["wget"]),
    },
    "expect": {"status": (["ok", ["ok", "refused"], "${STATUS}", ["${STATUS}"]], [[], "bad", 5])},
}  # fmt: skip
REQUIRED = {"tcp": ["host", "port"], "http": ["url"], "dns": ["name"], "expect": ["status"]}


@st.composite
def _thing(draw: st.DrawFn, kind: str, damage: bool) -> dict[str, Any]:
    """A valid `kind` (a few optional fields), or with `damage` one field refused."""
    fields = FIELDS[kind]
    chosen = set(REQUIRED.get(kind, [])) | set(
        draw(st.lists(st.sampled_from(sorted(fields)), max_size=3))
    )
    thing: dict[str, Any] = {} if kind in ("defaults", "expect") else {"kind": kind}
    for name in sorted(chosen):
        thing[name] = draw(st.sampled_from(fields[name][0]))
    if damage:
        name = draw(st.sampled_from(sorted(fields)))
        thing[name] = draw(st.sampled_from(fields[name][1]))
    return thing


@st.composite
def _matrices(draw: st.DrawFn) -> dict[str, Any]:
    """A valid matrix, or one with one mistake (a refused value, both port and ports,
    neither, a missing key, a name that is not a name)."""
    damaged = draw(st.sampled_from(["none", "source", "target", "defaults", "expect", "shape"]))
    source = draw(_thing(draw(st.sampled_from(["local", "process", "shell"])), damaged == "source"))
    kind = draw(st.sampled_from(["tcp", "http", "dns"]))
    target = draw(_thing(kind, damaged == "target"))
    matrix: dict[str, Any] = {"sources": {"a": source}, "targets": {"t": target}}
    if damaged == "defaults" or draw(st.booleans()):
        matrix["defaults"] = draw(_thing("defaults", damaged == "defaults"))
    if damaged == "expect" or draw(st.booleans()):
        matrix["expect"] = [draw(_thing("expect", damaged == "expect"))]
    if damaged == "shape":
        mistake = draw(
            st.sampled_from(["both ports", "no port", "null port", "bad name", "no kind", "v2"])
        )
        if mistake == "both ports":
            matrix["targets"]["t"] = {"kind": "tcp", "host": "h", "port": 1, "ports": [2]}
        elif mistake == "null port":  # not a mistake: a null is no value, for both
            matrix["targets"]["t"] = {"kind": "tcp", "host": "h", "port": None, "ports": [2]}
        elif mistake == "no port":
            matrix["targets"]["t"] = {"kind": "tcp", "host": "h"}
        elif mistake == "bad name":
            matrix["targets"] = {"x y": target}
        elif mistake == "no kind":
            del source["kind"]
        else:
            matrix["version"] = draw(st.sampled_from([2, "1", True]))
    return matrix


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(_matrices())
def test_the_schema_accepts_exactly_what_validate_accepts(matrix: dict[str, Any]) -> None:
    try:
        load_matrix_text(json.dumps(matrix), "m.json", ENVIRON)
        verdict = "valid"
    except SpecError as exc:
        verdict = f"refused: {exc}"
    errors = schema_errors(matrix)
    assert (verdict == "valid") == (errors == []), f"validate {verdict}; schema: {errors}"
