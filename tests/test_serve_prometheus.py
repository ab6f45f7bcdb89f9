"""A real Prometheus (Debian's package) scrapes a real `probe-engine serve`, everything on
127.0.0.1: the series exist, their label sets stay the same while a listener is stopped and
started again, and the documented alert fires for the path that was ok and now refuses.

The alerting rules are docs/prometheus/alerts.yml itself: loaded into this Prometheus with their
windows shortened (10m -> 4s; a test waits seconds, not minutes), and checked as written by
`promtool test rules`. Every assertion goes through Prometheus' HTTP API.
Under CI=true a missing Prometheus fails these tests instead of skipping them.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from probe_engine.demo.fixtures import LOOPBACK, LoopbackLab, free_port
from tests.conftest import require
from tests.serve_process import ServeProcess, wait_for

pytestmark = pytest.mark.timeout(400)

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "docs" / "prometheus" / "alerts.yml"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# Shortened windows, same expressions: "ok for 10 minutes within the last hour" becomes
# "ok for 4 seconds within the last minute", evaluated every second.
SHORTER = {"[10m]": "[4s]", "offset 10m": "offset 4s", "[1h:1m]": "[60s:1s]", "for: 1m": "for: 1s"}


def shortened(rules: str) -> str:
    for long, short in SHORTER.items():
        assert long in rules, f"{long} is no longer in {ALERTS.name}: update SHORTER"
        rules = rules.replace(long, short)
    return rules


class Prometheus:
    """A Prometheus server on 127.0.0.1 that scrapes one target every second."""

    def __init__(self, folder: Path, target: str, rules: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rules.yml").write_text(rules)
        (folder / "prometheus.yml").write_text(
            f"""global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}
rule_files: [rules.yml]
scrape_configs:
  - job_name: probe-engine
    static_configs: [{{targets: ["{target}"]}}]
"""
        )
        self.log = folder / "prometheus.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
            )
        wait_for("Prometheus to be ready", self._ready, 120)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"prometheus exited {self.proc.returncode}: {self.log.read_text()}"
            )
        with contextlib.suppress(OSError), _OPENER.open(self.url + "/-/ready", timeout=5) as ready:
            return bool(ready.status == 200)
        return False

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with _OPENER.open(url, timeout=30) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def values(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query as {labels without __name__: value}."""
        return {
            tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__")): float(
                s["value"][1]
            )
            for s in self.query(expr)
        }

    def series(self, match: str, start: float) -> set[tuple[tuple[str, str], ...]]:
        found = self.api("series", **{"match[]": match, "start": str(start)})
        return {tuple(sorted(s.items())) for s in found}

    def firing(self, alertname: str) -> list[dict[str, str]]:
        return [
            a["labels"]
            for a in self.api("alerts")["alerts"]
            if a["labels"].get("alertname") == alertname and a["state"] == "firing"
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


class Listener:
    """A TCP port on 127.0.0.1 that the test opens and closes: ok, then refused, then ok."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sock: socket.socket | None = None

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, self.port))
        sock.listen(128)  # connects complete in the kernel's queue: no accept needed
        self.sock = sock

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@pytest.fixture
def binaries() -> None:
    require(Path(PROMETHEUS).is_file(), f"{PROMETHEUS} is missing (apt-get install prometheus)")
    require(Path(PROMTOOL).is_file(), f"{PROMTOOL} is missing (apt-get install prometheus)")


@pytest.fixture
def listener() -> Iterator[Listener]:
    port = Listener()
    port.start()
    yield port
    port.stop()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start serve and Prometheus; both are stopped at the end, whatever happened."""
    stops: list[Callable[[], Any]] = []

    def run(what: Callable[[], Any], stop: str) -> Any:
        made = what()
        stops.append(getattr(made, stop))
        return made

    yield run
    for stop in reversed(stops):
        stop()


def test_prometheus_scrapes_stable_series_and_the_alert_fires(
    binaries: None,
    running: Callable[..., Any],
    loopback: LoopbackLab,
    listener: Listener,
    tmp_path: Path,
) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(
        f"""version: 1
defaults: {{timeout: 5s}}
sources:
  here: {{kind: local}}
targets:
  api: {{kind: http, url: "http://127.0.0.1:{loopback.http_port}/health"}}
  flip: {{kind: tcp, host: 127.0.0.1, port: {listener.port}}}
  db: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}
"""
    )
    serve: ServeProcess = running(
        lambda: ServeProcess(
            matrix,
            "--interval",
            "500ms",
            "--no-jitter",
            "--once-at-start",
            log=tmp_path / "serve.log",
        ),
        "kill",
    )
    target = serve.url.removeprefix("http://")
    prometheus: Prometheus = running(
        lambda: Prometheus(tmp_path / "prometheus", target, shortened(ALERTS.read_text())),
        "stop",
    )
    begin = float(prometheus.api("query", query="time()")["result"][0])
    flip = '{source="here",target="flip"'

    # 1. The series exist, every name probe-engine's own, each cell's status a state set.
    wait_for(
        "Prometheus to see flip ok",
        lambda: prometheus.values(f'probe_engine_cell_status{flip},status="ok"}}'),
    )
    names = {s["__name__"] for s in prometheus.api("series", **{"match[]": '{job="probe-engine"}'})}
    assert {
        "probe_engine_cell_status",
        "probe_engine_cell_errno_info",
        "probe_engine_cell_duration_seconds",
        "probe_engine_cell_phase_duration_seconds",
        "probe_engine_cell_status_since_timestamp_seconds",
        "probe_engine_cell_status_changes_total",
        "probe_engine_run_duration_seconds",
        "probe_engine_runs_total",
        "probe_engine_runs_skipped_total",
        "probe_engine_last_success_timestamp_seconds",
        "probe_engine_findings",
    } <= names
    own = {n for n in names if n != "up" and not n.startswith("scrape_")}
    assert all(n.startswith("probe_engine_") for n in own), own
    one_each = prometheus.values("sum by (source, target) (probe_engine_cell_status)")
    assert set(one_each.values()) == {1.0} and len(one_each) == 3
    assert prometheus.values('probe_engine_cell_status{source="here",target="db"} == 1') == {
        (
            ("instance", target),
            ("job", "probe-engine"),
            ("source", "here"),
            ("status", "refused"),
            ("target", "db"),
        ): 1.0
    }
    # The documented join (docs/serve.md): failing cells with what failed.
    failing = prometheus.values(
        '(probe_engine_cell_status{status!="ok"} == 1)'
        " * on (instance, source, target) group_left (phase, errno) probe_engine_cell_errno_info"
    )
    assert {(d["target"], d["status"], d["phase"], d["errno"]) for d in map(dict, failing)} == {
        ("db", "refused", "tcp", "ECONNREFUSED")
    }
    stable = (
        '{__name__=~"probe_engine_.*",__name__!="probe_engine_cell_errno_info",'
        'job="probe-engine",source="here",target="flip"}'
    )
    before = prometheus.series(stable, begin)
    assert len(before) == 12 + 1 + 1 + 1 + 1  # 12 states, duration, tcp phase, since, changes

    # 2. The path has been ok long enough (the rule's own words), then the listener stops.
    ok_long_enough = ALERTS_SECOND_HALF.format(cell=flip)
    wait_for("flip ok for the rule's window", lambda: prometheus.query(ok_long_enough))
    listener.stop()
    wait_for(
        "Prometheus to see flip refused",
        lambda: prometheus.values(f'probe_engine_cell_status{flip},status="refused"}} == 1'),
    )
    firing = wait_for("the alert to fire", lambda: prometheus.firing("ProbeEnginePathNowRefused"))
    # Only the path that was ok: db was refused all along and never pages.
    assert [(a["source"], a["target"], a["severity"]) for a in firing] == [("here", "flip", "page")]
    errno = prometheus.values(f"probe_engine_cell_errno_info{flip}}}")
    assert [dict(labels)["errno"] for labels in errno] == ["ECONNREFUSED"]

    # 3. The listener comes back: values changed, the series did not.
    listener.start()
    wait_for(
        "Prometheus to see flip ok again",
        lambda: prometheus.values(f'probe_engine_cell_status{flip},status="ok"}} == 1'),
    )
    assert prometheus.series(stable, begin) == before
    # What failed is one info series at a time (its errno label is what changes).
    assert prometheus.values(f"count(probe_engine_cell_errno_info{flip}}})") == {(): 1.0}
    changes = prometheus.values(f"probe_engine_cell_status_changes_total{flip}}}")
    assert list(changes.values()) == [2.0]

    def ok_refused_ok() -> bool:
        now = float(prometheus.api("query", query="time()")["result"][0])
        found = prometheus.api(
            "query_range",
            query=f'probe_engine_cell_status{flip},status="ok"}}',
            start=str(begin),
            end=str(now),
            step="1",
        )["result"]
        assert len(found) == 1  # one series all along
        seen = [float(v) for _t, v in found[0]["values"]]
        return [v for i, v in enumerate(seen) if i == 0 or v != seen[i - 1]] == [1.0, 0.0, 1.0]

    wait_for("ok, refused, ok in the range query", ok_refused_ok)


# The rule's second half: "this cell was ok throughout a window at some point in the last hour".
ALERTS_SECOND_HALF = (
    'max_over_time((min_over_time(probe_engine_cell_status{cell},status="ok"}}[4s]) == 1'
    ' and probe_engine_cell_status{cell},status="ok"}} offset 4s == 1)[60s:1s]) == 1'
)


def test_the_documented_rules_as_written(binaries: None, tmp_path: Path) -> None:
    """promtool evaluates the rule file as shipped (10 minutes, 1 hour) on series it is
    given: it fires for a path ok for 15 minutes then refused, and not for one that flaps."""
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    cell = 'job="probe-engine",instance="serve:9462",source="worker",target="{target}",status="{status}"'
    (tmp_path / "test.yml").write_text(
        f"""rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'probe_engine_cell_status{{{cell.format(target="api", status="ok")}}}'
        values: '1x15 0x20'
      - series: 'probe_engine_cell_status{{{cell.format(target="api", status="refused")}}}'
        values: '0x15 1x20'
      - series: 'probe_engine_cell_status{{{cell.format(target="flaky", status="ok")}}}'
        values: '1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 0 0 0 0 0 0 0 0 0'
      - series: 'probe_engine_cell_status{{{cell.format(target="flaky", status="refused")}}}'
        values: '0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 1 1 1 1 1 1 1 1 1'
    alert_rule_test:
      - eval_time: 15m
        alertname: ProbeEnginePathNowRefused
        exp_alerts: []
      - eval_time: 20m
        alertname: ProbeEnginePathNowRefused
        exp_alerts:
          - exp_labels:
              severity: page
              job: probe-engine
              instance: "serve:9462"
              source: worker
              target: api
              status: refused
            exp_annotations:
              summary: "worker can no longer reach api: connection refused"
              description: "The cell worker -> api was ok for 10 minutes and is now refused (ECONNREFUSED: nothing listens there, or a REJECT rule). Open /report for the diagnosis and since when."
"""
    )
    run = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"SUCCESS", run.stdout), run.stdout
