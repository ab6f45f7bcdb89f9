"""`python -m bench.serve_sigterm`: SIGTERM a loaded `probe-engine serve` at many moments.

Each round starts serve on the 100-cell matrix of bench.serve (plus a `process` source, so a
child Python is in flight too) with `--interval 50ms --no-jitter --once-at-start`, loads it
with HTTP clients (/metrics, /report, /history.json and one-off /probe cells, back to back),
waits a random moment (0 to --max-delay s after it listens: before, during and between runs)
and sends SIGTERM; then it records the exit status, the time to exit, and whether the log holds
a faulthandler dump ("Fatal Python error") or a traceback. Looks for crashes at shutdown: a
status other than 0 is one (-11: SIGSEGV; a core file is kept where `ulimit -c` allows).

With --tls-hang N (default 0), N more cells of the local source are https requests to a listener
that accepts and never answers (timeout 1m): their worker threads sit in TLS handshakes when
serve stops, and their connections are closed the moment serve logs that it stopped, which
sends every one of them back into OpenSSL while the process exits, the window of issue #17's
SIGSEGV (bench/README.md has the counts, and which mix of cells hit it). Bounded: --rounds
(default 40) or --minutes (default 15).

    ulimit -c unlimited; .venv/bin/python -m bench.serve_sigterm [--rounds 40] [--tls-hang 100]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.serve import _Health, _Server, matrix

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PATHS = (
    "/metrics",
    "/report",
    "/history.json",
    "/report.json",
    "/probe?source=here&target=http1",
    "/probe?source=child&target=open*",
)


def _load(url: str, stop: threading.Event, counts: Counter[str]) -> None:
    """GET the endpoints back to back until `stop` (every request bounded by its timeout)."""
    rng = random.Random()
    while not stop.is_set():
        path = rng.choice(PATHS)
        try:
            with OPENER.open(url + path, timeout=10) as response:
                response.read()
                counts[str(response.status)] += 1
        except urllib.error.HTTPError as exc:
            counts[str(exc.code)] += 1
        except OSError as exc:  # serve is going away: refused, reset
            counts[type(exc).__name__] += 1
            time.sleep(0.02)


def _listening(log: Path, proc: subprocess.Popen[bytes], timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log.read_text(errors="replace").splitlines():
            if "listening on http://" in line:
                return line.split("listening on ")[1].split(": ")[0]
        time.sleep(0.05)
    return None


class _Holder:
    """Accepts connections and holds them unanswered until let go."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.open:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                continue

    def let_go(self) -> None:
        held, self.held = self.held, []
        for conn in held:
            conn.close()

    def close(self) -> None:
        self.open = False
        self.let_go()
        self.sock.close()


def one_round(
    folder: Path, path: Path, delay: float, clients: int, holder: _Holder
) -> dict[str, Any]:
    log = folder / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-m", "probe_engine", "serve", str(path),
             "--listen", "127.0.0.1:0", "--interval", "50ms", "--no-jitter", "--once-at-start"],
            stdout=subprocess.DEVNULL, stderr=sink, cwd=folder,
        )  # fmt: skip
    stop = threading.Event()
    counts: Counter[str] = Counter()
    threads: list[threading.Thread] = []
    try:
        url = _listening(log, proc, 120)
        if url is None:
            raise RuntimeError(f"serve did not listen:\n{log.read_text(errors='replace')}")
        for _ in range(clients):
            thread = threading.Thread(target=_load, args=(url, stop, counts), daemon=True)
            thread.start()
            threads.append(thread)
        time.sleep(delay)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if "stopped after" in log.read_text(errors="replace"):
                break
            time.sleep(0.002)
        holder.let_go()  # the threads in handshakes go back into OpenSSL as serve exits
        code = proc.wait(timeout=120)
        took = time.monotonic() - signalled
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for thread in threads:
            thread.join(timeout=15)
    text = log.read_text(errors="replace")
    runs = sum(1 for line in text.splitlines() if " INFO run " in line)
    return {
        "delay_s": round(delay, 2),
        "exit": code,
        "exit_s": round(took, 2),
        "runs_logged": runs,
        "fatal": "Fatal Python error" in text,
        "traceback": "Traceback" in text,
        "requests": dict(counts),
        "cores": sorted(p.name for p in folder.glob("core*")),
        "log": text if code != 0 or "Fatal Python error" in text or "Traceback" in text else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-delay", type=float, default=3.0)
    parser.add_argument("--tls-hang", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="copy the logs of bad rounds here")
    args = parser.parse_args(argv)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    http = _Server(("127.0.0.1", 0), _Health)
    assert isinstance(http, ThreadingHTTPServer)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    holder = _Holder()
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    rng = random.Random()
    try:
        with tempfile.TemporaryDirectory() as top:
            path = Path(top) / "matrix.yaml"
            text = matrix(int(http.server_address[1]), listener.getsockname()[1])
            text = text.replace("sources:\n", "sources:\n  child: {kind: process}\n")
            url = f"https://127.0.0.1:{holder.port}/"
            path.write_text(
                text
                + "".join(
                    f'  tls{i}: {{kind: http, url: "{url}", timeout: 1m}}\n'
                    for i in range(args.tls_hang)
                )
            )
            for number in range(args.rounds):
                if time.monotonic() - started > args.minutes * 60:
                    break
                folder = Path(top) / f"round-{number}"
                folder.mkdir()
                delay = rng.uniform(0, args.max_delay)
                result = one_round(folder, path, delay, args.clients, holder)
                result["round"] = number
                results.append(result)
                bad = result["exit"] != 0 or result["fatal"] or result["cores"]
                print(json.dumps({k: v for k, v in result.items() if k != "log"}), flush=True)
                if bad and args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copytree(folder, args.keep / folder.name)
                # empty the listener's queue of completed connections
                listener.setblocking(False)
                for _ in range(100_000):
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.close()
    finally:
        holder.close()
        listener.close()
        http.shutdown()
        http.server_close()
    exits = Counter(r["exit"] for r in results)
    print(
        json.dumps(
            {
                "rounds": len(results),
                "exit_statuses": {str(k): v for k, v in exits.items()},
                "fatal": sum(r["fatal"] for r in results),
                "traceback": sum(r["traceback"] for r in results),
                "slowest_exit_s": max((r["exit_s"] for r in results), default=None),
                "minutes": round((time.monotonic() - started) / 60, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
