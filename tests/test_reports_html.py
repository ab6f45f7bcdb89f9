"""The HTML report in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Opened from file:// as a CI artifact would be: the grid, the details panel, the filters, and
that the page asks for nothing over the network and runs none of the text it shows.
Set PROBE_ENGINE_SCREENSHOT=/tmp/report.png to keep a screenshot of the opened details panel.
Under CI=true a missing browser or Playwright fails these tests instead of skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

import probe_engine
from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.reports.html_report import STATUS_COLOUR, render_html
from probe_engine.reports.view import CellTrend, LiveContext, cell_label
from probe_engine.results import MatrixResult
from probe_engine.spec import load_matrix_text
from tests.conftest import require

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

DATA = Path(__file__).parent / "data" / "reports"
CHROMIUM = os.environ.get("PROBE_ENGINE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCRIPT_ROW = 'task-python <script>alert("row")</script>'


@pytest.fixture(scope="module")
def result() -> MatrixResult:
    return MatrixResult.model_validate_json((DATA / "result.json").read_bytes())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Python Playwright is not installed (pip install playwright)")
    require(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@dataclass
class Page:
    """An opened report and everything it did: requests, console errors, dialogs."""

    page: Any
    url: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def assert_quiet(self) -> None:
        assert self.requests == [self.url], "the page must load nothing but itself"
        assert self.blocked == []
        assert self.errors == []
        assert self.dialogs == []

    def buttons(self) -> list[tuple[str, str]]:
        cells: list[list[str]] = self.page.evaluate(
            "() => Array.from(document.querySelectorAll('button.cell'))"
            ".map(b => [b.dataset.source, b.dataset.target])"
        )
        return [(source, target) for source, target in cells]

    def button(self, source: str, target: str) -> Any:
        return self.page.locator("button.cell").nth(self.buttons().index((source, target)))

    def details(self) -> str:
        return str(self.page.locator("#details").inner_text())


def open_report(
    browser: Any, result: MatrixResult, folder: Path, live: LiveContext | None = None
) -> Iterator[Page]:
    path = folder / "report.html"
    path.write_bytes(render_html(result, live))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)  # a missing element fails in seconds, not 30
    page = context.new_page()
    opened = Page(page, path.as_uri())

    def route(route: Any) -> None:
        if route.request.url == opened.url:
            route.continue_()
        else:
            opened.blocked.append(route.request.url)
            route.abort()

    def dialog(dialog: Any) -> None:
        opened.dialogs.append(dialog.message)
        dialog.dismiss()

    page.route("**/*", route)
    page.on("request", lambda request: opened.requests.append(request.url))

    def console(message: Any) -> None:
        if message.type in ("error", "warning"):
            opened.errors.append(f"{message.type}: {message.text}")

    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    page.on("dialog", dialog)
    page.on("console", console)
    page.goto(opened.url)
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def report(browser: Any, result: MatrixResult, tmp_path: Path) -> Iterator[Page]:
    yield from open_report(browser, result, tmp_path)


def _rgb(colour: str) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_the_grid_has_one_button_per_cell_coloured_and_labelled(
    report: Page, result: MatrixResult
) -> None:
    shown = report.page.evaluate(
        """() => Array.from(document.querySelectorAll('button.cell')).map(b => ({
            source: b.dataset.source, target: b.dataset.target,
            label: b.querySelector('.st').textContent,
            colour: getComputedStyle(b).backgroundColor,
            unmet: b.classList.contains('unmet')}))"""
    )
    cells = result.grid()
    assert len(shown) == len(result.cells)
    assert {(b["source"], b["target"]) for b in shown} == set(cells)
    for b in shown:
        cell = cells[(b["source"], b["target"])]
        assert b["label"] == cell_label(cell)
        assert b["colour"] == _rgb(STATUS_COLOUR[cell.status]), cell.status
        assert b["unmet"] == (cell.met is False)
    assert report.page.locator("td.empty").count() == 1  # the excluded cell
    headers = report.page.locator("#grid th.row").all_inner_texts()
    assert headers[1:] == [s.name for s in result.sources]
    report.assert_quiet()


def test_clicking_a_cell_shows_its_checks_proxy_and_addresses(report: Page) -> None:
    panel = report.page.locator("#details")
    assert panel.is_hidden()
    report.button(SCRIPT_ROW, "api").click()
    assert panel.is_visible()
    title = report.page.locator("#details-title").inner_text()
    assert title == f"{SCRIPT_ROW} → api: proxy-error"
    text = report.details()
    assert "ECONNREFUSED (111)" in text
    assert "127.0.0.1:3128 (ipv4)" in text
    assert "http://alice:***@127.0.0.1:3128" in text
    assert "HTTP_PROXY" in text
    assert "(to the proxy)" in text

    report.button(SCRIPT_ROW, "db|primary").click()
    text = report.details()
    assert "ECONNRESET (104)" in text
    assert "[::1]:5432 (ipv6)" in text

    report.button("workers/pod-1", "api-dns").click()
    text = report.details()
    assert "→ 127.0.0.1, ::1" in text
    assert "pod" in text  # facts a source kind adds are shown too
    assert "airflow" in text

    report.button("workers/pod-1", "api").click()
    text = report.details()
    assert "CERTIFICATE_VERIFY_FAILED" in text
    assert "undefined" not in text
    report.assert_quiet()


def test_escape_closes_the_panel_and_returns_to_the_cell(report: Page) -> None:
    report.button("scheduler-curl", "web/node-port").click()
    assert report.page.locator("#details").is_visible()
    report.page.keyboard.press("Escape")
    assert report.page.locator("#details").is_hidden()
    focused = report.page.evaluate("() => document.activeElement.dataset.target")
    assert focused == "web/node-port"
    report.button("scheduler-curl", "api").click()
    report.page.locator("#details .close").click()
    assert report.page.locator("#details").is_hidden()
    report.assert_quiet()


def _state(report: Page) -> dict[str, Any]:
    return dict(
        report.page.evaluate(
            """() => ({
            on: Array.from(document.querySelectorAll('#grid td[data-status]'))
                .filter(td => !td.classList.contains('filtered'))
                .map(td => td.querySelector('button').dataset.source + ' > '
                           + td.querySelector('button').dataset.target),
            dimmed: Array.from(document.querySelectorAll('#grid td.filtered button'))
                .map(b => getComputedStyle(b).opacity),
            rows: Array.from(document.querySelectorAll('#grid tbody tr'))
                .filter(tr => tr.offsetParent !== null)
                .map(tr => tr.querySelector('th').textContent)})"""
        )
    )


def test_status_filters_dim_cells_and_hide_empty_rows(report: Page, result: MatrixResult) -> None:
    everything = _state(report)
    assert len(everything["on"]) == len(result.cells)
    assert everything["dimmed"] == []

    report.page.locator('input.status-filter[value="ok"]').uncheck()
    state = _state(report)
    assert len(state["on"]) == len(result.cells) - result.summary.by_status["ok"]
    assert len(state["dimmed"]) == result.summary.by_status["ok"]
    assert all(float(opacity) < 0.5 for opacity in state["dimmed"])

    for box in report.page.locator("input.status-filter").all():
        if box.get_attribute("value") != "refused":
            box.uncheck()
    state = _state(report)
    assert state["on"] == ["scheduler-curl > db|primary"]
    assert state["rows"] == ["scheduler-curl"]

    for box in report.page.locator("input.status-filter").all():
        box.check()
    assert _state(report) == everything
    report.assert_quiet()


def test_unmet_only_keeps_the_unmet_cells(report: Page, result: MatrixResult) -> None:
    report.page.locator("#unmet-only").check()
    state = _state(report)
    unmet = [f"{c.source} > {c.target}" for c in result.cells if c.met is False]
    assert sorted(state["on"]) == sorted(unmet)
    assert state["rows"] == ["scheduler-curl", SCRIPT_ROW]
    report.page.locator('input.status-filter[value="timeout"]').uncheck()
    assert _state(report)["on"] == [f"{SCRIPT_ROW} > api"]
    report.page.locator("#unmet-only").uncheck()
    assert len(_state(report)["on"]) == len(result.cells) - 1
    report.assert_quiet()


def test_names_and_messages_are_text_never_markup(report: Page) -> None:
    page = report.page
    assert page.locator("script").count() == 3  # the two data blocks and the page's own
    assert page.locator("img").count() == 0
    assert SCRIPT_ROW in page.locator("#grid tbody").inner_text()
    # Errors and warnings are open, information is folded until clicked.
    assert page.locator(".finding details[open]").count() == 2
    info = page.locator(".finding.info details")
    assert not info.get_attribute("open")
    info.locator("summary").click()
    assert "Zürich" in info.inner_text()
    assert page.locator(".finding.warning p.next code").inner_text() == "iptables -S | grep 30080"
    findings = page.locator(".findings").inner_text()
    assert '<script>alert("finding")</script>' in findings
    assert "<img src=x onerror=alert(1)>" in findings
    assert "büro-☃ & 'quoted'" in page.locator("#grid").inner_text()
    assert "configs/story & <lab>.yaml" in page.locator("header").inner_text()
    report.button(SCRIPT_ROW, "api").click()
    assert "<script>alert('msg')</script> & | \"q\"" in report.details()
    report.button("workers/pod-1", "db|primary").click()  # control characters in a message
    assert 'container "probe" not found' in report.details()
    report.button("büro-☃ & 'quoted'", "api").click()
    assert "upstream <b>broke</b> & died | badly" in report.details()
    assert page.locator("#details b").count() == 0
    if os.environ.get("PROBE_ENGINE_SCREENSHOT"):
        page.screenshot(path=os.environ["PROBE_ENGINE_SCREENSHOT"], full_page=True)
    report.assert_quiet()


def test_a_real_runs_report_opens_every_cell_without_errors(
    browser: Any, loopback: LoopbackLab, tmp_path: Path
) -> None:
    matrix = Path(probe_engine.__file__).parent / "demo" / "matrix.yaml"
    loaded = load_matrix_text(matrix.read_text(), str(matrix), environ=loopback.variables())
    # Playwright's sync API keeps an event loop running in this thread: run beside it.
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(lambda: anyio.run(probe_engine.run_matrix, loaded)).result()
    for report in open_report(browser, result, tmp_path):
        cells = result.grid()
        assert set(report.buttons()) == set(cells)
        for index, (source, target) in enumerate(report.buttons()):
            report.page.locator("button.cell").nth(index).click()
            title = report.page.locator("#details-title").inner_text()
            assert title == f"{source} → {target}: {cells[(source, target)].status}"
            assert "Checks" in report.details()
        report.assert_quiet()


def test_a_served_report_shows_the_run_the_schedule_and_each_cells_history(
    browser: Any, result: MatrixResult, tmp_path: Path
) -> None:
    """As `serve` renders /report: the run's number and time, a banner while a bad new matrix
    is refused, the cells that changed, and per cell since when and its last runs."""
    since = result.started_at
    flapping = ("scheduler-curl", "web/node-port")
    trends = {
        (c.source, c.target): CellTrend(since=since, changes=0, runs=3, recent=(c.status,) * 3)
        for c in result.cells
    }
    trends[flapping] = CellTrend(
        since=since, changes=4, runs=6, recent=("ok", "timeout", "ok", "timeout", "ok", "timeout")
    )
    live = LiveContext(
        run_number=42,
        interval_s=30.0,
        history_size=100,
        matrix_error="matrix.yaml:5:42: targets.db.port: 99999 is too large (at most 65535)",
        trends=trends,
    )
    for opened in open_report(browser, result, tmp_path, live):
        page = opened.page
        header = page.locator("header").inner_text()
        assert "live · run #42" in header
        assert f"run at {result.finished_at:%Y-%m-%d %H:%M:%S} UTC · every 30 s" in header
        banner = page.get_by_role("alert").inner_text()
        assert "could not be reloaded" in banner and "99999 is too large" in banner
        rows = page.locator("table.changes tbody tr").all_inner_texts()
        assert len(rows) == 1
        assert "scheduler-curl → web/node-port" in rows[0]
        assert "4 in 6 runs · flapping" in rows[0]
        cell = opened.button(*flapping)
        assert "↻ 4" in cell.inner_text()
        bars = cell.locator(".trend i")
        assert bars.count() == 6
        assert bars.nth(1).evaluate("b => getComputedStyle(b).backgroundColor") == _rgb(
            STATUS_COLOUR["timeout"]
        )
        assert page.locator("button.cell .trend").count() == len(result.cells)
        cell.click()
        details = opened.details()
        assert "History" in details
        assert "4 in the last 6 runs" in details
        assert "ok → timeout → ok → timeout → ok → timeout" in details
        opened.assert_quiet()


@pytest.mark.timeout(600)
def test_a_ten_thousand_cell_scan_is_one_column_group_per_row_that_opens_on_click(
    browser: Any, loopback: LoopbackLab, tmp_path: Path
) -> None:
    """Two sources over a 5000-port range and one more port: the range is folded into one
    column group, each row counting its statuses; a click builds its 5000 columns (each cell
    as the grid shows it, details on click), a second click folds it again. The page stays
    under 5 MB."""
    text = (
        "version: 1\n"
        "sources: {here1: {kind: local}, here2: {kind: local}}\n"
        "targets:\n"
        '  scan: {kind: tcp, host: 127.0.0.1, ports: ["47001-52000"]}\n'
        f"  web: {{kind: tcp, host: 127.0.0.1, port: {loopback.http_port}}}\n"
    )
    loaded = load_matrix_text(text, "scan.yaml", {})
    with ThreadPoolExecutor(1) as pool:  # Playwright's event loop holds this thread
        result = pool.submit(lambda: anyio.run(probe_engine.run_matrix, loaded)).result()
    assert result.summary.total == 10_002
    assert len(render_html(result)) < 5_000_000
    cells = result.grid()
    for report in open_report(browser, result, tmp_path):
        page = report.page
        assert report.buttons() == [("here1", "web"), ("here2", "web")]
        head = page.locator("#grid thead th.group")
        assert head.count() == 1
        assert head.inner_text() == "▸ scan 5000 columns"
        for row in ("here1", "here2"):
            counted: dict[str, int] = {}
            for cell in result.cells:
                if cell.source == row and cell.target_name == "scan":
                    counted[cell.status] = counted.get(cell.status, 0) + 1
            pills = page.locator(f'#grid tr[data-row="{row}"] td.group .pill').all_inner_texts()
            shown = {p.rsplit(" ", 1)[0]: int(p.rsplit(" ", 1)[1]) for p in pills}
            assert shown == counted

        # Building 10,000 cells takes seconds on a loaded machine: the click may wait for it
        # (how long it takes is bench/scan.py's business, not this test's).
        page.locator("#grid button.expand").click(timeout=120_000)
        assert head.locator("button").get_attribute("aria-expanded") == "true"
        expanded = page.evaluate(
            """() => Array.from(document.querySelectorAll('button.cell')).map(b => [
                b.dataset.source, b.dataset.target, b.querySelector('.st').textContent,
                getComputedStyle(b).backgroundColor])"""
        )
        assert len(expanded) == 10_002
        assert {(s, t) for s, t, _l, _c in expanded} == set(cells)
        for source, target, label, colour in expanded:
            cell = cells[(source, target)]
            assert label == cell_label(cell)
            assert colour == _rgb(STATUS_COLOUR[cell.status])
        columns = page.locator("#grid thead th").all_inner_texts()
        assert columns[2:5] == ["scan:47001", "scan:47002", "scan:47003"]
        assert columns[-1] == "web"

        report.button("here2", "scan:49999").click()
        title = page.locator("#details-title").inner_text()
        assert title == f"here2 → scan:49999: {cells[('here2', 'scan:49999')].status}"
        assert "127.0.0.1:49999" in report.details()
        page.keyboard.press("Escape")

        page.locator("#grid button.expand").click(timeout=120_000)
        assert report.buttons() == [("here1", "web"), ("here2", "web")]
        assert page.locator("#grid thead th").count() == 3
        report.assert_quiet()
