"""Reports are written all or nothing: a failure keeps the previous run's reports intact."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from probe_engine.errors import ReportError
from probe_engine.reports import DEFAULT_FORMATS, REPORTERS, atomic, write_reports
from probe_engine.results import MatrixResult

DATA = Path(__file__).parent / "data" / "reports"
ALL = list(REPORTERS)
NAMES = sorted(f"report.{extension}" for _render, extension in REPORTERS.values())


@pytest.fixture(scope="module")
def result() -> MatrixResult:
    return MatrixResult.model_validate_json((DATA / "result.json").read_bytes())


@pytest.fixture
def previous(tmp_path: Path, result: MatrixResult) -> dict[str, bytes]:
    """A folder holding the reports of an earlier run; their bytes, by file name."""
    earlier = result.model_copy(update={"tool_version": "0.0.1-earlier"})
    write_reports(earlier, tmp_path, ALL)
    return snapshot(tmp_path)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_every_format_is_written_with_its_extension(tmp_path: Path, result: MatrixResult) -> None:
    written = write_reports(result, tmp_path / "new" / "dir", ALL, basename="run")
    assert [p.name for p in written] == [f"run.{ext}" for _r, ext in REPORTERS.values()]
    for path in written:
        assert path.stat().st_size > 0
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path / "new" / "dir")) == sorted(p.name for p in written)
    assert set(DEFAULT_FORMATS) <= set(REPORTERS)


def test_a_failing_renderer_writes_nothing_and_keeps_the_old_reports(
    tmp_path: Path,
    result: MatrixResult,
    previous: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(_result: MatrixResult) -> bytes:
        raise RuntimeError("renderer bug")

    # The last format fails: json, html and junit were rendered but must not be written.
    monkeypatch.setitem(REPORTERS, "prometheus", (broken, "prom"))
    with pytest.raises(RuntimeError, match="renderer bug"):
        write_reports(result, tmp_path, ALL)
    assert snapshot(tmp_path) == previous  # same names (no temporaries), same bytes


def test_a_failing_renderer_in_a_fresh_folder_leaves_it_empty(
    tmp_path: Path, result: MatrixResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_result: MatrixResult) -> bytes:
        raise ValueError("cannot render")

    monkeypatch.setitem(REPORTERS, "markdown", (broken, "md"))
    with pytest.raises(ValueError, match="cannot render"):
        write_reports(result, tmp_path / "out", ALL)
    assert not (tmp_path / "out").exists()


def test_a_write_failure_midway_keeps_every_old_report_and_no_temporary(
    tmp_path: Path,
    result: MatrixResult,
    previous: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_stage = atomic._stage
    calls: list[Path] = []

    def stage(path: Path, data: bytes) -> str:
        calls.append(path)
        if len(calls) == 3:  # the disk fills up while writing the third report
            raise OSError(28, "No space left on device")
        return real_stage(path, data)

    monkeypatch.setattr(atomic, "_stage", stage)
    with pytest.raises(ReportError, match=r"report\.xml: No space left on device"):
        write_reports(result, tmp_path, ALL)
    assert len(calls) == 3
    assert snapshot(tmp_path) == previous


def test_a_failing_write_inside_a_temporary_removes_it(
    tmp_path: Path,
    result: MatrixResult,
    previous: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_fsync = os.fsync
    calls = 0

    def fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(ReportError, match="Input/output error"):
        write_reports(result, tmp_path, ALL)
    assert snapshot(tmp_path) == previous


def test_a_failing_rename_leaves_no_temporary(
    tmp_path: Path,
    result: MatrixResult,
    previous: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def replace(_src: str, _dst: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ReportError, match="Read-only file system"):
        write_reports(result, tmp_path, ALL)
    assert snapshot(tmp_path) == previous


def test_a_folder_in_the_way_of_one_report_stops_them_all(
    tmp_path: Path, result: MatrixResult, previous: dict[str, bytes]
) -> None:
    # A real obstacle, no monkeypatching: the HTML report's name is taken by a folder.
    (tmp_path / "report.html").unlink()
    (tmp_path / "report.html").mkdir()
    before = snapshot_files(tmp_path)
    with pytest.raises(ReportError, match=r"report\.html"):
        write_reports(result, tmp_path, ALL)
    assert snapshot_files(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == NAMES


def snapshot_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_an_unknown_format_writes_nothing(tmp_path: Path, result: MatrixResult) -> None:
    with pytest.raises(ReportError, match="unknown report format yaml"):
        write_reports(result, tmp_path / "out", ["json", "yaml"])
    assert not (tmp_path / "out").exists()


def test_rewriting_replaces_the_old_reports(
    tmp_path: Path, result: MatrixResult, previous: dict[str, bytes]
) -> None:
    write_reports(result, tmp_path, ALL)
    now = snapshot(tmp_path)
    assert sorted(now) == NAMES
    assert all(now[name] != previous[name] for name in ("report.json", "report.html"))
    assert b"0.0.1-earlier" not in now["report.json"]
