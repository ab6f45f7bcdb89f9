"""The matrix file: what a user may write, and the one-line error for each mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from probe_engine import SpecError, load_matrix
from probe_engine.spec import load_matrix_dict, load_matrix_text
from probe_engine.spec.targets import TcpTargetSpec

BAD = Path(__file__).parent / "data" / "bad"

# file -> the exact message after "FILE:"
BAD_INPUTS = {
    "unknown-key.yaml": "2:23: sources.here.colour: unknown key",
    "bad-port.yaml": "4:42: targets.db.port: 70000 is too large (at most 65535)",
    "bad-port-range.yaml": "4:45: targets.scan.ports: '900-100': a range goes from low to high",
    "bad-duration.yaml": "2:12: defaults.timeout: '2 minutes' is not a duration: "
    "use a number with ms, s, m or h (500ms, 2s, 1m)",
    "duplicate-source.yaml": "3:3: sources.here: duplicate key 'here' (first at line 2)",
    "undefined-source.yaml": "6:14: expect[0].source: 'task-python' matches no source (declared: here)",
    "undefined-target.yaml": "6:28: exclude[0].target: 'api' matches no target (declared: db)",
    "not-a-mapping.yaml": "1:1: expected a mapping with sources and targets, found list",
    "invalid-yaml.yaml": "3:8: invalid YAML: did not find expected ',' or '}' "
    "(while parsing a flow mapping)",
    "unknown-kind.yaml": "2:16: sources.here.kind: unknown kind 'lokal' "
    "(expected one of: local, process, shell",
    "missing-variable.yaml": "4:26: targets.api.host: environment variable PE_TEST_UNSET_NODE_IP "
    "is not set (write ${PE_TEST_UNSET_NODE_IP:-default} for a fallback)",
    "bad-status.yaml": "6:40: expect[0].status: 'refused-ish' is not one of: ok, refused,",
    "port-and-ports.yaml": "4:7: targets.db: give either port or ports",
    "bad-url.yaml": "4:26: targets.api.url: 'ftp://127.0.0.1/health' is not an http:// or https:// URL",
    "no-sources.yaml": "1:10: sources: declare at least one",
    "empty.yaml": "1:1: the file is empty: expected a mapping with sources and targets",
    "bad-name.yaml": "2:21: sources.here and there: 'here and there' is not a valid name: "
    "use letters, digits, '.', '_' and '-'",
    "bad-version.yaml": "1:10: version: 2 is not one of: 1",
}


def test_every_bad_input_file_is_in_the_table() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(BAD_INPUTS)


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_names_file_line_and_field(name: str) -> None:
    path = BAD / name
    with pytest.raises(SpecError) as caught:
        load_matrix(path, environ={})
    first_line = str(caught.value).splitlines()[0]
    assert first_line.startswith(f"{path}:{BAD_INPUTS[name]}")


@pytest.mark.parametrize("name", ["unknown-key.yaml", "invalid-yaml.yaml", "bad-port.yaml"])
def test_validate_command_prints_one_line_and_exits_2(name: str) -> None:
    path = BAD / name
    run = subprocess.run(
        [sys.executable, "-m", "probe_engine", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [f"{path}:{BAD_INPUTS[name]}"]
    assert "Traceback" not in run.stderr


def test_several_mistakes_are_each_reported_in_file_order() -> None:
    text = """
sources:
  here: {kind: local, colour: blue}
targets:
  db: {kind: tcp, host: 127.0.0.1, port: 0}
"""
    with pytest.raises(SpecError) as caught:
        load_matrix_text(text, "m.yaml")
    assert str(caught.value).splitlines() == [
        "m.yaml:3:23: sources.here.colour: unknown key",
        "m.yaml:5:42: targets.db.port: 0 is too small (at least 1)",
    ]


def test_environment_references_and_defaults_are_substituted() -> None:
    text = """
sources:
  here: {kind: local}
targets:
  api: {kind: tcp, host: "${NODE_IP}", port: "${NODE_PORT:-30080}"}
  price: {kind: http, url: "http://${NODE_IP}/cost?currency=$$"}
"""
    loaded = load_matrix_text(text, "m.yaml", {"NODE_IP": "192.168.49.2"})
    api = loaded.matrix.targets["api"]
    assert isinstance(api, TcpTargetSpec)
    assert (api.host, api.port) == ("192.168.49.2", 30080)
    assert loaded.matrix.targets["price"].url == "http://192.168.49.2/cost?currency=$"  # type: ignore[union-attr]


def test_ports_take_lists_and_ranges_like_nmap() -> None:
    text = """
sources: {here: {kind: local}}
targets: {scan: {kind: tcp, host: 127.0.0.1, ports: [443, 80, "30000-30002", 80]}}
"""
    scan = load_matrix_text(text).matrix.targets["scan"]
    assert isinstance(scan, TcpTargetSpec)
    assert scan.port_list() == [443, 80, 30000, 30001, 30002]


def test_durations_accept_units_and_bare_seconds() -> None:
    text = """
defaults: {timeout: 500ms, deadline: 1m}
sources: {here: {kind: local}}
targets:
  a: {kind: tcp, host: 127.0.0.1, port: 1, timeout: 2}
  b: {kind: tcp, host: 127.0.0.1, port: 1, timeout: 1.5s}
"""
    matrix = load_matrix_text(text).matrix
    assert matrix.defaults.timeout == 0.5
    assert matrix.defaults.deadline == 60.0
    assert matrix.targets["a"].timeout == 2.0
    assert matrix.targets["b"].timeout == 1.5


def test_globs_in_expectations_must_match_something() -> None:
    text = """
sources: {task-python: {kind: local}}
targets: {db: {kind: tcp, host: 127.0.0.1, port: 1}}
expect: [{source: "task-*", target: "*", status: refused}, {source: "worker-*", status: ok}]
"""
    with pytest.raises(SpecError, match=r"expect\[1\]\.source: 'worker-\*' matches no source"):
        load_matrix_text(text, "m.yaml")


def test_yaml_anchors_and_merge_keys_work() -> None:
    text = """
sources:
  a: {kind: process, env: &proxy {HTTP_PROXY: "http://127.0.0.1:3128"}}
  b: {kind: process, env: {<<: *proxy, NO_PROXY: "10.0.0.0/8"}}
targets: {db: {kind: tcp, host: 127.0.0.1, port: 1}}
"""
    sources = load_matrix_text(text, "m.yaml").matrix.sources
    assert sources["b"].env == {"HTTP_PROXY": "http://127.0.0.1:3128", "NO_PROXY": "10.0.0.0/8"}  # type: ignore[union-attr]


def test_a_dict_matrix_validates_the_same_way() -> None:
    with pytest.raises(SpecError, match="sources.here.colour: unknown key"):
        load_matrix_dict(
            {
                "sources": {"here": {"kind": "local", "colour": "x"}},
                "targets": {"db": {"kind": "tcp", "host": "h", "port": 1}},
            }
        )
    loaded = load_matrix_dict(
        {
            "sources": {"here": {"kind": "local"}},
            "targets": {"db": {"kind": "tcp", "host": "h", "port": 1}},
        }
    )
    assert loaded.matrix.sources["here"].kind == "local"
    assert len(loaded.sha256) == 64


def test_schema_command_prints_a_json_schema_with_every_kind() -> None:
    import json

    run = subprocess.run(
        [sys.executable, "-m", "probe_engine", "schema"], capture_output=True, text=True, check=True
    )
    schema = json.loads(run.stdout)
    text = json.dumps(schema)
    for kind in ("local", "process", "shell", "tcp", "http", "dns"):
        assert f'"{kind}"' in text
    assert schema["additionalProperties"] is False
