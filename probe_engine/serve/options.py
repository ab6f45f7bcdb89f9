"""How `serve` was asked to run: where to listen, how often, what each run may take."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..agent.address import ip_literal
from ..engine import RunOptions
from ..errors import SpecError

DEFAULT_PORT = 9462
DEFAULT_RUN_DEADLINE = 300.0
"""A scheduled run without --deadline or a matrix deadline still ends: serve never hangs."""


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    interval: float = 30.0
    jitter: bool = True
    once_at_start: bool = False
    history: int = 100
    reload_check: float = 2.0
    """Seconds between looks at the matrix file; 0: only SIGHUP reloads."""
    max_probes: int = 4
    """One-off /probe runs in flight at once; more are refused with 429."""
    run: RunOptions = field(default_factory=RunOptions)


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:9462', '[::1]:9462', '0.0.0.0:9462', ':9462' (every address) -> host, port."""
    host, colon, port_text = text.strip().rpartition(":")
    if not colon:
        host, port_text = text.strip(), str(DEFAULT_PORT)
    host = host.strip("[]") or "0.0.0.0"
    if host != "localhost" and ip_literal(host) is None:
        raise SpecError(f"{text!r}: listen on an IP address, e.g. 127.0.0.1:9462", field="--listen")
    try:
        port = int(port_text)
    except ValueError:
        raise SpecError(f"{text!r}: the port is not a number", field="--listen") from None
    if not 0 <= port <= 65535:
        raise SpecError(f"{text!r}: the port must be 0-65535", field="--listen")
    return host, port
