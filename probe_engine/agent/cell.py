"""One cell while the runner drives it: its plan, its phase, the checks so far.

Standard library only and Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

from typing import cast

from . import dns as dns_check
from .plans import CellOrder, Plan
from .records import Check, ProxyFacts, TlsFacts
from .tcp import Attempt


class Cell:
    """The state of one cell while it runs."""

    __slots__ = (
        "addresses",
        "attempts",
        "checks",
        "cut",
        "deadline",
        "done",
        "host",
        "id",
        "may_block",
        "phase",
        "phase_started",
        "plan",
        "port",
        "proxy",
        "proxy_url",
        "started",
        "started_at",
        "tcp_records",
        "timeout",
        "tls",
    )

    def __init__(self, spec: CellOrder, default_timeout: float) -> None:
        self.id = spec["id"]
        self.plan: Plan = spec["plan"]
        self.timeout = float(spec.get("timeout") or default_timeout)
        self.checks: list[Check] = []
        self.proxy: ProxyFacts | None = None
        self.proxy_url: str | None = None
        self.tls: TlsFacts | None = None
        self.host = ""
        self.port = 0
        self.addresses: list[tuple[int, str]] = []
        self.attempts: list[Attempt] = []
        self.tcp_records: dict[int, Check] = {}
        self.phase = "queued"
        self.phase_started = 0.0
        self.started = 0.0
        self.started_at = 0.0
        self.deadline = 0.0
        self.done = False
        self.cut = False  # stopped with the run, mid-phase
        self.may_block = False


def may_block(plan: Plan) -> bool:
    """Whether a cell may need a worker thread: a lookup, a nameserver query, a request, a
    ping or a UDP exchange. A tcp connect to an address needs none (the selector does it)."""
    if plan["kind"] != "tcp":
        return True
    if plan.get("addresses"):
        return False
    return dns_check.literal_family(str(plan["host"])) is None


def copy_record(record: Check) -> Check:
    """A check record of one's own: its lists too, as cells annotate what they are given."""
    return cast(Check, {k: list(v) if isinstance(v, list) else v for k, v in record.items()})
