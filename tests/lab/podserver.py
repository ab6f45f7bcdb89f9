"""The lab's stand-in for the FastAPI pod behind the Service.

Run by `netlab` inside the pod namespace as `python3 -I podserver.py --port 8000`. Standard
library only (http.server), so the lab needs nothing but the system Python.

- `GET /`            200, plain text
- `GET /health`      200, JSON `{"status": "ok", "pod": NAME}` (what the story's curl hits)
- `GET /slow?seconds=N`  sleeps N seconds (default 5, at most 60) then 200: a read-timeout target
- anything else      404, JSON like FastAPI's `{"detail": "Not Found"}`

Its access log (stdout, one line per request, flushed) names the client's address and port
and the User-Agent, as nginx's combined format names the agent and uvicorn's the client:
`10.231.49.10:51234 - "GET /health HTTP/1.1" 200 "probe-engine/0.1 run=... cell=3"`.
`--udp-port N` also echoes every UDP datagram on N back to its sender.
"""

from __future__ import annotations

import argparse
import json
import socket
import socketserver
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_SLOW_SECONDS = 60.0
DEFAULT_SLOW_SECONDS = 5.0


class PodHandler(BaseHTTPRequestHandler):
    """Answers the few routes above; the pod name comes from the server object."""

    server_version = "probe-engine-lab-pod/1"

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        url = urlsplit(self.path)
        if url.path == "/health":
            pod = getattr(self.server, "pod_name", "pod")
            self._send(200, "application/json", {"status": "ok", "pod": pod}, send_body)
        elif url.path == "/":
            self._send(200, "text/plain", "probe-engine lab pod\n", send_body)
        elif url.path == "/slow":
            seconds = _slow_seconds(url.query)
            time.sleep(seconds)
            self._send(200, "application/json", {"slept": seconds}, send_body)
        else:
            self._send(404, "application/json", {"detail": "Not Found"}, send_body)

    def _send(self, status: int, ctype: str, body: object, send_body: bool) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if isinstance(code, HTTPStatus):
            code = code.value
        host, port = self.client_address[:2]
        agent = self.headers.get("User-Agent", "-") if self.headers else "-"
        sys.stdout.write(f'{host}:{port} - "{self.requestline}" {code} "{agent}"\n')
        sys.stdout.flush()

    def log_message(self, format: str, *args: object) -> None:
        # Errors (a bad request line): one line on stderr, which the lab sends to its log file.
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class PodServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its pod name and does no DNS lookup at start."""

    daemon_threads = True  # a hung /slow request must not delay SIGTERM shutdown

    def __init__(self, address: tuple[str, int], pod_name: str) -> None:
        self.pod_name = pod_name
        super().__init__(address, PodHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS query for the host name: it would
        # make start-up wait on the lab's resolver (seen: 2 s of resolver timeouts).
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


def _slow_seconds(query: str) -> float:
    """Parse ?seconds=N, clamped so a typo cannot pin a server thread for hours."""
    raw = parse_qs(query).get("seconds", [str(DEFAULT_SLOW_SECONDS)])[0]
    try:
        return max(0.0, min(float(raw), MAX_SLOW_SECONDS))
    except ValueError:
        return DEFAULT_SLOW_SECONDS


def udp_echo(host: str, port: int) -> None:
    """Send every datagram back to whoever sent it (a UDP service that answers)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    while True:
        data, peer = sock.recvfrom(65535)
        sock.sendto(data, peer)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--udp-port", type=int, default=None)
    parser.add_argument("--pod-name", default="pod")
    args = parser.parse_args(argv)
    server = PodServer((args.host, args.port), args.pod_name)
    if args.udp_port is not None:
        threading.Thread(target=udp_echo, args=(args.host, args.udp_port), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
