"""`python -m bench.serve`: memory and CPU of `probe-engine serve` over many runs.

A 100-cell matrix (one local source; 40 open ports, 30 closed ports, 30 HTTP requests, all on
127.0.0.1) served with `--interval 50ms --no-jitter` until 1000 runs have completed; /metrics,
/report and /history.json are fetched every 10 runs, as Prometheus and a browser would. The RSS
of the serve process is sampled along the way (psutil), its CPU time (user + system) read at the
end. Bounded: 1000 runs or 20 minutes, whichever comes first. Not a test: nothing asserts.

    .venv/bin/python -m bench.serve [--runs 1000] [--history 100]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

from probe_engine.demo.fixtures import LOOPBACK, free_port

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
LIMIT_SECONDS = 20 * 60


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    # socketserver's default queue of 5 drops SYNs when 30 cells connect at once: timeouts
    # that would be the fixture's, not serve's.
    request_queue_size = 1024
    daemon_threads = True


def matrix(http_port: int, listener: int) -> str:
    targets = [f"  open{i}: {{kind: tcp, host: 127.0.0.1, port: {listener}}}" for i in range(40)]
    closed = [free_port() for _ in range(30)]
    targets += [
        f"  closed{i}: {{kind: tcp, host: 127.0.0.1, port: {p}}}" for i, p in enumerate(closed)
    ]
    targets += [
        f'  http{i}: {{kind: http, url: "http://127.0.0.1:{http_port}/health"}}' for i in range(30)
    ]
    return "version: 1\ndefaults: {timeout: 2s}\nsources:\n  here: {kind: local}\ntargets:\n" + (
        "\n".join(targets) + "\n"
    )


def get(url: str) -> bytes:
    with OPENER.open(url, timeout=30) as response:
        body: bytes = response.read()
        return body


def runs_total(url: str) -> int:
    for line in get(url + "/metrics").decode().splitlines():
        if line.startswith("probe_engine_runs_total "):
            return int(float(line.split()[1]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--history", type=int, default=100)
    args = parser.parse_args(argv)
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(4096)  # completes connects in the kernel; closed by the reset below
    http = _Server((LOOPBACK, 0), _Health)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "matrix.yaml"
        path.write_text(matrix(int(http.server_address[1]), listener.getsockname()[1]))
        log = Path(folder) / "serve.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "probe_engine", "serve", str(path), "--listen",
                 "127.0.0.1:0", "--interval", "50ms", "--no-jitter", "--once-at-start",
                 "--history", str(args.history)],
                stdout=subprocess.DEVNULL, stderr=sink,
            )  # fmt: skip
        try:
            url = ""
            deadline = time.monotonic() + 120
            while not url and time.monotonic() < deadline:
                for line in log.read_text().splitlines():
                    if "listening on http://" in line:
                        url = line.split("listening on ")[1].split(": ")[0]
                time.sleep(0.1)
            process = psutil.Process(proc.pid)
            started = time.monotonic()
            cpu0 = process.cpu_times()
            samples: list[dict[str, Any]] = []
            done = fetched = 0
            while done < args.runs and time.monotonic() - started < LIMIT_SECONDS:
                time.sleep(0.2)
                done = runs_total(url)
                if done // 10 > fetched:
                    fetched = done // 10
                    get(url + "/report")
                    get(url + "/history.json")
                if not samples or done - samples[-1]["runs"] >= 50:
                    samples.append(
                        {"runs": done, "rss_mb": process.memory_info().rss / 1e6,
                         "seconds": time.monotonic() - started}
                    )  # fmt: skip
                # the listener's queue fills with completed connections: empty it now and then
                listener.setblocking(False)
                for _ in range(10_000):
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.close()
            elapsed = time.monotonic() - started
            cpu1 = process.cpu_times()
            cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
            metrics = get(url + "/metrics")
            skipped = next(
                float(line.split()[1])
                for line in metrics.decode().splitlines()
                if line.startswith("probe_engine_runs_skipped_total ")
            )
            proc.terminate()
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            listener.close()
            http.shutdown()
            http.server_close()
    rss = [s["rss_mb"] for s in samples]
    result = {
        "runs": done,
        "cells_per_run": 100,
        "seconds": round(elapsed, 1),
        "runs_per_second": round(done / elapsed, 2),
        "skipped_ticks": skipped,
        "cpu_seconds": round(cpu, 1),
        "cpu_ms_per_run": round(1000 * cpu / max(done, 1), 1),
        "rss_mb_first_sample": round(rss[0], 1),
        "rss_mb_after_100_runs": round(next(s["rss_mb"] for s in samples if s["runs"] >= 100), 1),
        "rss_mb_last": round(rss[-1], 1),
        "rss_mb_max": round(max(rss), 1),
        "metrics_bytes": len(metrics),
        "exit_status_on_sigterm": code,
        "samples": samples,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    out = Path(__file__).with_name("serve-results.json")
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
