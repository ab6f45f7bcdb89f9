"""Property-based: whatever bytes or YAML a user pipes in, `validate` answers exit 0, or exit 2
with one `FILE[:LINE:COL]: problem` line per problem; never a traceback, never exit 1 or 3.

Deterministic (derandomize, no example database) and bounded (max_examples, no deadline):
the same examples every run, in a few seconds, so CI cannot flake on it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe_engine.cli import cli

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LINE = re.compile(r"<stdin>(?::[0-9]+(?::[0-9]+)?)?: \S.*")
VALID = """version: 1
defaults: {timeout: 2s, concurrency: 8}
sources:
  here: {kind: local}
  curl: {kind: shell, tool: curl, env: {http_proxy: "http://127.0.0.1:3128"}}
targets:
  api: {kind: http, url: "http://127.0.0.1:8000/health", expect_status: [200]}
  db: {kind: tcp, host: 127.0.0.1, ports: [5432, "30000-30002"]}
  name: {kind: dns, name: localhost}
expect:
  - {source: "*", target: api, status: ok}
"""


def validate(data: bytes) -> tuple[int, list[str]]:
    """`probe-engine validate -` in this process; (exit status, stderr lines)."""
    result = CliRunner().invoke(cli, ["validate", "-"], input=data)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"validate raised {result.exception!r}") from result.exception
    return result.exit_code, result.stderr.splitlines()


def check_answer(data: bytes) -> None:
    status, lines = validate(data)
    assert status in (0, 2), (status, lines)
    if status == 0:
        assert lines == []
        return
    assert lines, "exit 2 says why"
    for line in lines:
        assert LINE.fullmatch(line), line
        assert "Traceback" not in line


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_get_an_answer(data: bytes) -> None:
    check_answer(data)


# YAML's own punctuation and the matrix's words: most random text is not even YAML, this is.
_TOKENS = st.sampled_from(
    [
        "sources:", "targets:", "kind:", "local", "tcp", "http", "host:", "port:", "ports:",
        "[", "]", "{", "}", ",", ":", "-", " ", "  ", "\n", "\t", "&a", "*a", "<<:", "!!str",
        "!!int", "!foo", "'", '"', "#", "---", "...", "?", "|", ">", "~", "null", "no", "0x1F",
        "1e9", "22:22", "${X}", "${X:-1}", "$$", "\\", "\x00", "é", "127.0.0.1", "30000-30100",
    ]
)  # fmt: skip


@FUZZ
@given(st.lists(_TOKENS, max_size=60).map("".join))
def test_yaml_punctuation_soup_gets_an_answer(text: str) -> None:
    check_answer(text.encode("utf-8", errors="surrogatepass"))


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(VALID)),
    st.integers(min_value=0, max_value=40),
    st.text(max_size=12),
)
def test_a_valid_matrix_damaged_anywhere_gets_an_answer(at: int, cut: int, insert: str) -> None:
    check_answer((VALID[:at] + insert + VALID[at + cut :]).encode("utf-8", errors="surrogatepass"))


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["local", "tcp", "http", "dns", "shell", "127.0.0.1", "2s", "*", "ok"]),
)
_KEYS = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        ["sources", "targets", "kind", "host", "port", "ports", "url", "expect", "defaults"]
    ),
)
_TREES: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=30,
)


@FUZZ
@given(_TREES)
def test_any_yaml_tree_gets_an_answer(tree: Any) -> None:
    # JSON is YAML 1.2: every tree, as the loader reads it, with every scalar kind.
    check_answer(json.dumps(tree).encode())


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["version", "defaults", "sources", "targets", "expect", "exclude"]),
        _TREES,
        max_size=6,
    )
)
def test_any_matrix_shaped_tree_gets_an_answer(tree: dict[str, Any]) -> None:
    check_answer(json.dumps(tree).encode())


def test_the_fuzzed_seed_matrix_is_valid() -> None:
    assert validate(VALID.encode()) == (0, [])
