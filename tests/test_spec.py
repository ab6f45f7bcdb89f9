"""The matrix file: what a user may write, and the one-line error for each mistake.

Every file in tests/data/bad is one mistake (or a few), checked against every line that
`validate` prints for it; the stories below cover what YAML 1.2, the limits and the strict
values mean for a user.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from probe_engine import SpecError, load_matrix
from probe_engine.spec import load_matrix_dict, load_matrix_text
from probe_engine.spec.limits import MAX_CELLS, MAX_DOCUMENT_BYTES, MAX_ERRORS, MAX_VALUES
from probe_engine.spec.targets import TcpTargetSpec

BAD = Path(__file__).parent / "data" / "bad"

# file -> every line `validate` prints for it, after "FILE:"
BAD_INPUTS: dict[str, list[str]] = {
    "bad-duration.yaml": [
        "2:12: defaults.timeout: '2 minutes' is not a duration: use ms, s, m or h (500ms, 2s, 1m30s, 1h) or a number of seconds",
    ],
    "bad-header.yaml": [
        "4:57: targets.api.headers[\"X Token\"]: 'X Token' is not a header name (letters, digits and -, no spaces)",
        "4:79: targets.api.headers.X-Ok: 'b\\nInjected: c': a header value holds no line breaks or control characters",
    ],
    "bad-name.yaml": [
        "2:3: sources[\"here and there\"]: 'here and there' is not a valid name: use letters, digits, '.', '_' and '-'",
    ],
    "bad-icmp-udp.yaml": [
        "4:46: targets.ping.count: 0 is too small (at least 1)",
        "5:60: targets.ping-bind.bind.address: '10.0.0.300' is not an IP address",
        "6:50: targets.ping-both.bind: give either address or interface",
        "7:11: targets.syslog: give either payload or payload_hex",
        "8:60: targets.dns.payload_hex: '0g' is not hex bytes (pairs of 0-9, a-f)",
        "9:65: targets.eth.bind.interface: 'eth/1' is not an interface name (1 to 15 characters, no '/', ':' or spaces)",
    ],
    "bad-port-range.yaml": [
        "4:45: targets.scan.ports: '900-100': a range goes from low to high",
    ],
    "bad-port.yaml": [
        "4:42: targets.db.port: 70000 is too large (at most 65535)",
    ],
    "bad-status.yaml": [
        "6:40: expect[0].status: 'refused-ish': did you mean 'refused'? (one of: ok, refused, timeout, unreachable, dns-error, reset, http-error, tls-error, proxy-error, source-error, target-error or cancelled)",
    ],
    "bad-url.yaml": [
        "4:26: targets.api.url: 'ftp://127.0.0.1/health' is not an http:// or https:// URL",
    ],
    "bad-version.yaml": [
        "1:10: version: 2 is not a version this probe-engine reads (write 1)",
    ],
    "billion-laughs.yaml": [
        "7:15: the alias *a4 stands for 111,111 values: with it the file would hold more than 250,000 (aliases of aliases multiply)",
    ],
    "complex-key.yaml": [
        "2:3: sources: a key must be a name, not a list or a mapping",
    ],
    "compound-duration.yaml": [
        "1:21: defaults.timeout: '1m30' is not a duration: use ms, s, m or h (500ms, 2s, 1m30s, 1h) or a number of seconds",
        "1:37: defaults.deadline: '1s1m' is not a duration: use ms, s, m or h (500ms, 2s, 1m30s, 1h) or a number of seconds",
    ],
    "deep-nesting.yaml": [
        "2:73: nested more than 64 levels deep (a matrix needs 6)",
    ],
    "duplicate-source.yaml": [
        "3:3: sources.here: duplicate key 'here' (first at line 2)",
    ],
    "empty.yaml": [
        "1:1: the file is empty: expected a mapping with sources and targets",
    ],
    "flag-yes.yaml": [
        "3:34: sources.here.trust_env: 'no' is not true or false",
        "5:60: targets.api.verify_tls: 'off' is not true or false",
    ],
    "host-space.yaml": [
        "4:25: targets.db.host: 'a b': a host has no spaces",
    ],
    "host-url.yaml": [
        "4:26: targets.api.host: 'http://127.0.0.1' is a URL: write the address alone, or use kind: http",
    ],
    "invalid-yaml.yaml": [
        "3:8: invalid YAML: did not find expected ',' or '}' (while parsing a flow mapping)",
    ],
    "kind-variable.yaml": [
        "2:16: sources.here.kind: write the kind itself, not a ${VARIABLE}",
    ],
    "missing-variable.yaml": [
        "4:26: targets.api.host: environment variable PE_TEST_UNSET_NODE_IP is not set (write ${PE_TEST_UNSET_NODE_IP:-default} for a fallback)",
    ],
    "no-sources.yaml": [
        "1:10: sources: declare at least one",
    ],
    "not-a-mapping.yaml": [
        "1:1: expected a mapping with sources and targets, found a list",
    ],
    "not-utf8.yaml": [
        "2:39: not UTF-8 text: byte 0xe9 cannot be read (save the file as UTF-8)",
    ],
    "nul-character.yaml": [
        "2:36: sources.here.description: a NUL character (\\0) has no place in a matrix",
    ],
    "number-as-text.yaml": [
        '2:37: sources.here.env.PORT: expected text, found 8080: write it in quotes ("...") if it is text',
        '4:61: targets.db.description: expected text, found 1.1: write it in quotes ("...") if it is text',
    ],
    "port-and-ports.yaml": [
        "4:7: targets.db: give either port or ports",
    ],
    "port-range-unquoted.yaml": [
        '4:44: targets.web.ports: expected a list: write ports: ["18080-18082"] (a range is quoted)',
    ],
    "recursive-alias.yaml": [
        "2:42: sources.here.description: expected text, found a list",
        "2:43: sources.here.description[0]: *here is inside the value it names: a recursive alias",
    ],
    "several-mistakes.yaml": [
        "3:3: defaults.timout: unknown key: did you mean 'timeout'?",
        "5:25: sources.here.enviroment: unknown key: did you mean 'env'?",
        "6:3: sources.here: duplicate key 'here' (first at line 5)",
        "7:29: sources.curl.tool: 'crul': did you mean 'curl'? (one of: curl, wget, bash or nc)",
        "9:8: targets.api.url: required",
        "9:21: targets.api.ulr: unknown key: did you mean 'url'?",
        "10:42: targets.db.port: 70000 is too large (at most 65535)",
    ],
    "tab-indent.yaml": [
        "2:1: invalid YAML: found character that cannot start any token (while scanning for the next token); the line holds a tab: YAML indents with spaces only, replace each tab by spaces",
    ],
    "too-many-cells.yaml": [
        "4:1: targets: the matrix makes 131,070 cells (2 sources x 65,535 columns): more than the 100,000 a run may have; split it, or narrow it with cells: or exclude:",
    ],
    "two-documents.yaml": [
        "3:1: one matrix per file: a second YAML document starts here",
    ],
    "undefined-alias.yaml": [
        "2:9: sources.here: *local names no anchor (define &local before it)",
    ],
    "undefined-source.yaml": [
        "6:14: expect[0].source: 'task-python' matches no source (declared: here)",
    ],
    "undefined-target.yaml": [
        "6:28: exclude[0].target: 'api' matches no target (declared: db)",
    ],
    "unknown-key.yaml": [
        "2:23: sources.here.colour: unknown key (allowed here: bind, description, http_client, kind, trust_env)",
    ],
    "unknown-kind.yaml": [
        "2:16: sources.here.kind: unknown kind 'lokal': did you mean 'local'? (expected one of: local, process, shell, netns, docker, kubernetes, kubernetes-nodes)",
    ],
    "unsupported-tag.yaml": [
        "2:36: sources.here.description: the tag !!binary is not supported here (a matrix holds text, numbers, true/false, null, lists and mappings)",
        "4:42: targets.db.port: 'eighty' is not a !!int",
    ],
    "yaml11-surprises.yaml": [
        "5:42: targets.no.port: '22:22' is not a whole number",
    ],
}


def test_every_bad_input_file_is_in_the_table() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(BAD_INPUTS)


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_names_file_line_and_field(name: str) -> None:
    path = BAD / name
    with pytest.raises(SpecError) as caught:
        load_matrix(path, environ={})
    assert str(caught.value).splitlines() == [f"{path}:{line}" for line in BAD_INPUTS[name]]


@pytest.mark.parametrize(
    "name",
    ["unknown-key.yaml", "invalid-yaml.yaml", "several-mistakes.yaml", "billion-laughs.yaml"],
)
def test_validate_command_prints_one_line_per_problem_and_exits_2(name: str) -> None:
    path = BAD / name
    run = subprocess.run(
        [sys.executable, "-m", "probe_engine", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [f"{path}:{line}" for line in BAD_INPUTS[name]]


def _load(text: str, environ: dict[str, str] | None = None) -> list[str]:
    """The lines a matrix text's errors print as (m.yaml:LINE:COL: ...), [] when valid."""
    try:
        load_matrix_text(text, "m.yaml", environ or {})
    except SpecError as exc:
        return str(exc).splitlines()
    return []


MINIMAL = "sources: {here: {kind: local}}\ntargets: {db: {kind: tcp, host: 127.0.0.1, port: 1}}\n"


def test_environment_references_and_defaults_are_substituted() -> None:
    text = """
sources:
  here: {kind: local}
targets:
  api: {kind: tcp, host: "${NODE_IP}", port: "${NODE_PORT:-30080}"}
  price: {kind: http, url: "http://${NODE_IP}/cost?currency=$$", verify_tls: "${VERIFY:-false}"}
"""
    loaded = load_matrix_text(text, "m.yaml", {"NODE_IP": "192.168.49.2"})
    api = loaded.matrix.targets["api"]
    assert isinstance(api, TcpTargetSpec)
    assert (api.host, api.port) == ("192.168.49.2", 30080)
    price = loaded.matrix.targets["price"]
    assert price.url == "http://192.168.49.2/cost?currency=$"  # type: ignore[union-attr]
    assert price.verify_tls is False  # type: ignore[union-attr]


def test_ports_take_lists_and_ranges_like_nmap() -> None:
    text = """
sources: {here: {kind: local}}
targets: {scan: {kind: tcp, host: 127.0.0.1, ports: [443, 80, "30000-30002", 80, "8080"]}}
"""
    scan = load_matrix_text(text).matrix.targets["scan"]
    assert isinstance(scan, TcpTargetSpec)
    assert scan.port_list() == [443, 80, 30000, 30001, 30002, 8080]


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("500ms", 0.5),
        ("2s", 2.0),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1h2m3s4ms", 3723.004),
        ("1.5m", 90.0),
        ("2", 2.0),
        ("0.25", 0.25),
        ('"3"', 3.0),
    ],
)
def test_durations_take_compound_units_and_bare_seconds(written: str, seconds: float) -> None:
    text = f"defaults: {{timeout: {written}}}\n" + MINIMAL
    assert load_matrix_text(text).matrix.defaults.timeout == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("0s", "a duration must be greater than zero"),
        ("-1", "a duration must be greater than zero"),
        (".inf", "inf is not a duration: give a finite number of seconds"),
        ("1s1m", "'1s1m' is not a duration"),
        ("2 s", "'2 s' is not a duration"),
        ("true", "True is not a duration"),
        ("[1]", "[1] is not a duration"),
    ],
)
def test_bad_durations_say_what_to_write(written: str, problem: str) -> None:
    (line,) = _load(f"defaults: {{timeout: {written}}}\n" + MINIMAL)
    assert line.startswith(f"m.yaml:1:21: defaults.timeout: {problem}")


def test_yaml_1_2_plain_scalars_mean_what_kubernetes_reads() -> None:
    text = """
description: 2024-01-01
sources:
  no: {kind: process, env: {A: "on", B: yes, C: 0o17, D: "2024-01-01"}, trust_env: false}
  on: {kind: local, description: off}
targets:
  yes: {kind: tcp, host: 127.0.0.1, port: 0x1F90}
  1: {kind: tcp, host: "::1", port: 0o17}
  true: {kind: tcp, host: 127.0.0.1, port: 1, timeout: 1.5e0}
"""
    lines = _load(text)
    # An env value of 0o17 is the number 15: a value that must be text says so.
    assert lines == [
        'm.yaml:4:49: sources.no.env.C: expected text, found 15: write it in quotes ("...") '
        "if it is text"
    ]
    matrix = load_matrix_text(text.replace("C: 0o17", 'C: "0o17"'), "m.yaml").matrix
    assert matrix.description == "2024-01-01"  # no timestamps
    assert list(matrix.sources) == ["no", "on"]  # names stay what was typed
    assert list(matrix.targets) == ["yes", "1", "true"]
    assert matrix.sources["no"].env == {  # type: ignore[union-attr]
        "A": "on",
        "B": "yes",
        "C": "0o17",
        "D": "2024-01-01",
    }
    assert matrix.sources["on"].description == "off"  # type: ignore[union-attr]
    assert [t.port for t in matrix.targets.values()] == [8080, 15, 1]  # type: ignore[union-attr]
    assert matrix.targets["true"].timeout == 1.5


def test_sexagesimal_and_yaml_1_1_booleans_are_not_numbers_or_flags() -> None:
    assert _load(MINIMAL.replace("port: 1", "port: 22:22")) == [
        "m.yaml:2:50: targets.db.port: '22:22' is not a whole number"
    ]
    assert _load(MINIMAL.replace("kind: local", "kind: local, trust_env: yes")) == [
        "m.yaml:1:42: sources.here.trust_env: 'yes' is not true or false"
    ]


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "::1", "fe80::1%eth0", "api.example.com", "my_service", "localhost."]
)
def test_hosts_are_dns_names_or_ip_addresses(host: str) -> None:
    assert _load(MINIMAL.replace("127.0.0.1", f'"{host}"')) == []


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        (
            "http://127.0.0.1",
            "'http://127.0.0.1' is a URL: write the address alone, or use kind: http",
        ),
        ("a b", "'a b': a host has no spaces"),
        (" db", "' db': a host has no spaces"),
        ("[::1]", "'[::1]': write the IPv6 address without brackets: ::1"),
        ("db:5432", "'db:5432': give the port in `port:`, the host alone in `host:`"),
        (
            "1.2.3.300",
            "'1.2.3.300' is not a host: give a DNS name (letters, digits, '-', '.') or an IP address",
        ),
        (
            "-db",
            "'-db' is not a host: give a DNS name (letters, digits, '-', '.') or an IP address",
        ),
        ("", "'': a host has no spaces"),
    ],
)
def test_bad_hosts_say_what_to_write(host: str, problem: str) -> None:
    assert _load(MINIMAL.replace("127.0.0.1", f'"{host}"')) == [
        f"m.yaml:2:33: targets.db.host: {problem}"
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "http://127.0.0.1/a b",
            "'http://127.0.0.1/a b': a URL has no spaces or control characters (write %20)",
        ),
        ("http://127.0.0.1:0/", "'http://127.0.0.1:0/' has a bad port"),
        ("http://a b/", "'http://a b/': a URL has no spaces or control characters (write %20)"),
        (
            "http://-x/",
            "'http://-x/': '-x' is not a host: give a DNS name (letters, digits, '-', '.') or an IP address",
        ),
        ("http:///health", "'http:///health' has no host"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, problem: str) -> None:
    text = f'sources: {{here: {{kind: local}}}}\ntargets: {{api: {{kind: http, url: "{url}"}}}}\n'
    assert _load(text) == [f"m.yaml:2:34: targets.api.url: {problem}"]


def test_a_typo_gets_a_did_you_mean() -> None:
    text = """
defaults: {timout: 2s}
sources: {here: {kind: proces, env: {}}, curl: {kind: shell, tool: wgte}}
targets: {api: {kind: http, ulr: "http://127.0.0.1/"}}
expect: [{source: here, target: api, status: refsued}]
"""
    assert _load(text) == [
        "m.yaml:2:12: defaults.timout: unknown key: did you mean 'timeout'?",
        "m.yaml:3:24: sources.here.kind: unknown kind 'proces': did you mean 'process'? "
        "(expected one of: local, process, shell, netns, docker, kubernetes, kubernetes-nodes)",
        "m.yaml:3:68: sources.curl.tool: 'wgte': did you mean 'wget'? (one of: curl, wget, bash or nc)",
        "m.yaml:4:16: targets.api.url: required",
        "m.yaml:4:29: targets.api.ulr: unknown key: did you mean 'url'?",
        "m.yaml:5:46: expect[0].status: 'refsued': did you mean 'refused'? (one of: ok, refused, "
        "timeout, unreachable, dns-error, reset, http-error, tls-error, proxy-error, source-error, "
        "target-error or cancelled)",
    ]


def test_an_unknown_key_without_a_close_match_lists_the_allowed_ones() -> None:
    assert _load(MINIMAL.replace("kind: local", "kind: local, colour: blue")) == [
        "m.yaml:1:31: sources.here.colour: unknown key (allowed here: bind, description, "
        "http_client, kind, trust_env)"
    ]


def test_the_range_hint_shows_the_list_to_write() -> None:
    assert _load(MINIMAL.replace("port: 1", "ports: 80")) == [
        "m.yaml:2:51: targets.db.ports: expected a list: write ports: [80], or port: 80"
    ]


def test_duplicate_keys_do_not_hide_the_other_mistakes() -> None:
    text = """
sources:
  here: {kind: local}
  here: {kind: local}
targets:
  db: {kind: tcp, host: 127.0.0.1, port: 1, port: 2}
  api: {kind: http, url: "ftp://x"}
"""
    assert _load(text) == [
        "m.yaml:4:3: sources.here: duplicate key 'here' (first at line 3)",
        "m.yaml:6:45: targets.db.port: duplicate key 'port' (first at line 6)",
        "m.yaml:7:26: targets.api.url: 'ftp://x' is not an http:// or https:// URL",
    ]


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
  a: {kind: process, env: &proxy {HTTP_PROXY: "http://127.0.0.1:3128", NO_PROXY: "*"}}
  b: {kind: process, env: {<<: *proxy, NO_PROXY: "10.0.0.0/8"}}
  c: {kind: process, env: {NO_PROXY: "x", <<: [*proxy, {EXTRA: "1"}]}}
targets: {db: {kind: tcp, host: 127.0.0.1, port: 1}}
"""
    sources = load_matrix_text(text, "m.yaml").matrix.sources
    # An explicit key wins over a merged one, wherever it is written; merging is no duplicate.
    assert sources["b"].env == {"HTTP_PROXY": "http://127.0.0.1:3128", "NO_PROXY": "10.0.0.0/8"}  # type: ignore[union-attr]
    assert sources["c"].env == {
        "NO_PROXY": "x",
        "HTTP_PROXY": "http://127.0.0.1:3128",
        "EXTRA": "1",
    }  # type: ignore[union-attr]


def test_an_error_in_a_merged_value_points_at_the_merge() -> None:
    text = """
base: &base {kind: tcp, host: "a b", port: 1}
sources: {here: {kind: local}}
targets:
  db: {<<: *base}
"""
    assert _load(text) == [
        "m.yaml:2:1: base: unknown key (allowed here: cells, defaults, description, exclude, "
        "expect, kubernetes, sources, targets, version)",
        "m.yaml:5:12: targets.db.host: 'a b': a host has no spaces",
    ]


def test_the_value_limit_stops_a_wide_file_early(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text("x: [" + ",".join("0" for _ in range(MAX_VALUES + 10)) + "]\n")
    with pytest.raises(SpecError) as caught:
        load_matrix(path)
    column = 5 + 2 * (MAX_VALUES - 3)  # the mapping, its key and the list come first
    assert str(caught.value) == (
        f"{path}:1:{column}: the file holds more than {MAX_VALUES:,} values"
    )


def test_the_size_limit_refuses_a_huge_file_before_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("description: " + "x" * MAX_DOCUMENT_BYTES + "\n")
    with pytest.raises(SpecError) as caught:
        load_matrix(path)
    assert str(caught.value) == (
        f"{path}: the file is larger than the {MAX_DOCUMENT_BYTES:,} bytes a matrix may have"
    )


def test_cells_narrowed_by_exclude_stay_under_the_cell_limit() -> None:
    text = """
sources: {a: {kind: local}, b: {kind: local}}
targets: {scan: {kind: tcp, host: 127.0.0.1, ports: ["1-65535"]}}
exclude: [{source: b}]
"""
    assert _load(text) == []
    over = text.replace("exclude: [{source: b}]", "exclude: [{source: b, target: 'scan:1*'}]")
    (line,) = _load(over)
    assert line.endswith(
        f"the matrix makes 119,959 cells (2 sources x 65,535 columns after cells: and "
        f"exclude:): more than the {MAX_CELLS:,} a run may have; split it, or narrow it with "
        "cells: or exclude:"
    )


def test_at_most_max_errors_lines_then_a_count() -> None:
    targets = "\n".join(f"  t{i}: {{kind: tcp, host: 127.0.0.1, port: 0}}" for i in range(250))
    lines = _load(f"sources: {{here: {{kind: local}}}}\ntargets:\n{targets}\n")
    assert len(lines) == MAX_ERRORS + 1
    assert lines[0] == "m.yaml:3:42: targets.t0.port: 0 is too small (at least 1)"
    assert lines[-1] == "m.yaml: 50 more problems not shown"


def test_a_dict_matrix_validates_the_same_way() -> None:
    with pytest.raises(SpecError, match="sources.here.colour: unknown key"):
        load_matrix_dict(
            {
                "sources": {"here": {"kind": "local", "colour": "x"}},
                "targets": {"db": {"kind": "tcp", "host": "h", "port": 1}},
            }
        )
    with pytest.raises(SpecError, match="'yes' is not true or false"):
        load_matrix_dict(
            {
                "sources": {"here": {"kind": "local", "trust_env": "yes"}},
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


def test_validate_reads_stdin_for_a_dash() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "probe_engine", "validate", "-"],
        input=MINIMAL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (run.returncode, run.stdout, run.stderr) == (
        0,
        "<stdin>: ok (1 sources, 1 targets)\n",
        "",
    )
    bad = subprocess.run(
        [sys.executable, "-m", "probe_engine", "validate", "-"],
        input=MINIMAL.replace("port: 1", "port: 0"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (bad.returncode, bad.stderr) == (
        2,
        "<stdin>:2:50: targets.db.port: 0 is too small (at least 1)\n",
    )


def test_schema_command_prints_a_json_schema_with_every_kind() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "probe_engine", "schema"], capture_output=True, text=True, check=True
    )
    schema = json.loads(run.stdout)
    text = json.dumps(schema)
    for kind in (
        "local",
        "process",
        "shell",
        "netns",
        "docker",
        "kubernetes",
        "tcp",
        "http",
        "dns",
    ):
        assert f'"{kind}"' in text
    assert schema["additionalProperties"] is False
