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

from probe_engine import SpecError
from probe_engine.demo.fixtures import LoopbackLab
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
