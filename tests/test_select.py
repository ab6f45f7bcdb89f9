"""--select cannot pass vacuously: repeated selections compose (globs of one key are
alternatives, keys narrow each other), and a glob that matches nothing the matrix declares is
bad input (exit 2, naming what is declared), before anything runs and before any report is
touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.errors import SpecError
from probe_engine.plan import Selection

from .conftest import run_text
from .test_cli import probe_engine

MATRIX = """
sources: {here: {kind: local}, there: {kind: local}, elsewhere: {kind: local}}
targets:
  db:  {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
  api: {kind: tcp, host: 127.0.0.1, port: "${OPEN}"}
  scan: {kind: tcp, host: 127.0.0.1, ports: ["${CLOSED}", "${OPEN}"]}
"""


def ran(loopback: LoopbackLab, *selects: str) -> set[tuple[str, str]]:
    environ = {"CLOSED": str(loopback.closed_port), "OPEN": str(loopback.http_port)}
    result = run_text(MATRIX, environ, select=Selection.parse(selects))
    return {(c.source, c.target) for c in result.cells}


def test_keys_narrow_each_other(loopback: LoopbackLab) -> None:
    assert ran(loopback, "source=here", "target=db") == {("here", "db")}


def test_globs_of_one_key_are_alternatives(loopback: LoopbackLab) -> None:
    assert ran(loopback, "source=here", "source=there", "target=api") == {
        ("here", "api"),
        ("there", "api"),
    }


def test_a_column_can_be_selected_by_its_own_name(loopback: LoopbackLab) -> None:
    column = f"scan:{loopback.http_port}"
    assert ran(loopback, "source=here", f"target={column}") == {("here", column)}


@pytest.mark.parametrize(
    ("select", "message"),
    [
        ("source=nosuch", "source 'nosuch' matches no source (declared: here, there, elsewhere)"),
        ("target=dbb", "target 'dbb' matches no target (declared: db, api, scan)"),
        ("target=scan:1", "target 'scan:1' matches no target (declared: db, api, scan; columns:"),
    ],
)
def test_a_glob_that_matches_nothing_is_bad_input(
    loopback: LoopbackLab, select: str, message: str
) -> None:
    with pytest.raises(SpecError) as raised:
        ran(loopback, "source=here", select)
    assert message in str(raised.value)


def test_the_command_line_exits_2_and_keeps_earlier_reports(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        MATRIX.replace("${CLOSED}", str(loopback.closed_port)).replace(
            "${OPEN}", str(loopback.http_port)
        )
    )
    out = tmp_path / "r"
    out.mkdir()
    (out / "report.json").write_text("earlier")
    run = probe_engine("run", str(matrix), "--out", str(out), "--select", "source=nosuch")
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "probe-engine: --select: source 'nosuch' matches no source "
        "(declared: here, there, elsewhere)"
    )
    assert (out / "report.json").read_text() == "earlier"
    both = probe_engine(
        "run", str(matrix), "--output", "json", "--no-reports",
        "--select", "source=here", "--select", "target=db",
    )  # fmt: skip
    assert both.returncode == 0, both.stderr
    cells = json.loads(both.stdout)["cells"]
    assert [(c["source"], c["target"]) for c in cells] == [("here", "db")]
