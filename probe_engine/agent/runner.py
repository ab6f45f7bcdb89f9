"""Runs a batch of cells: every cell's checks in order (dns, then tcp and http, or icmp, or udp),
all cells concurrently.

One thread drives a selector for the TCP connects (thousands in flight cost little); blocking
calls (getaddrinfo, nameserver queries, HTTP exchanges, pings and UDP exchanges) go to daemon
worker threads and come back through a queue. Each cell has its own deadline; when it passes,
the phase under way is recorded as a timeout of the probe (errno empty), distinct from the
kernel's ETIMEDOUT. A port scan's cells go through the scan lane first (scan.py): those the
kernel answers inside connect() end there; the others continue here as ordinary cells.
Standard library only and Python 3.8 compatible: this is the agent's engine, and the local
source runs the very same code in-process.
"""

from __future__ import annotations

import heapq
import os
import queue
import selectors
import socket
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Callable, List, Mapping, Optional, Tuple

from . import dns as dns_check
from . import endings
from .bind import describe
from .cell import Cell, copy_record, may_block
from .icmp import echo_check
from .plans import Batch, CellOrder
from .proxy import proxy_address
from .records import CellOutcome, Check, ProxyFacts, RunStats
from .scan import Pending, ScanLane
from .tcp import Attempt, Connector, raise_fd_limit
from .udp import udp_check
from .workers import Workers

if TYPE_CHECKING:
    from .clients import HttpClient

Emit = Callable[[List[CellOutcome]], None]
# The proxy an HTTP cell's client takes: its facts, and the URL with credentials.
Decision = Tuple[ProxyFacts, Optional[str]]
# One lookup shared by the cells asking it; a nameserver query also by their timeout.
LookupKey = Tuple[dns_check.Question, Optional[float]]

# A cell waits on at most one blocking call at a time (a lookup or a request), so one worker
# per cell in flight means no cell ever queues behind its neighbours' calls: a lookup stuck
# behind 64 hanging requests would time out and report a working name as broken. Threads are
# made only when needed; past this many, cells that may block start no faster than workers free.
MAX_WORKERS = 1024
# Lookup failures that a second question would get again (the resolver answered).
DEFINITE_ANSWERS = frozenset({"nxdomain", "no-address", "no-address-of-family", "invalid"})
FLUSH_SECONDS = 0.02
FLUSH_CELLS = 512
# A ping or a UDP exchange is given the cell's remaining time less this, so that it answers
# with what it saw (replies so far, the loss) before the runner's own deadline cuts it.
EXCHANGE_MARGIN = 0.1


class Runner:
    """Runs one batch request; results leave through `emit` in small groups as cells finish."""

    def __init__(
        self,
        request: Batch,
        emit: Emit,
        stop: threading.Event | None = None,
        env: Mapping[str, str] | None = None,
        scan_lane: bool = True,
    ) -> None:
        """`scan_lane` False runs every cell through the phases (the lane's tests compare)."""
        raise_fd_limit()
        self.default_timeout = float(request.get("timeout", 2.0))
        self.concurrency = max(1, int(request.get("concurrency", 256)))
        self.env = os.environ if env is None else env
        self.client_name = str(request.get("http_client", "requests"))
        self.trust_env = bool(request.get("trust_env", True))
        # Made on the first http cell: a batch without one never imports an HTTP client.
        self._client: HttpClient | None = None
        # Cells are made as they start, and dropped once reported: a large batch keeps only
        # the cells in flight alive.
        self.specs: list[CellOrder] = list(request.get("cells", []))
        self.emit = emit
        self.stop = stop or threading.Event()
        self.selector = selectors.DefaultSelector()
        self.connector = Connector(self.selector)
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, (self._drain_wake, None))
        self.completions: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        # One more than the cells that may block at once: the httpx warm-up takes one too.
        self.blocking_limit = min(MAX_WORKERS - 1, self.concurrency)
        self.workers = Workers(self.blocking_limit + 1, self.completions, self.wake_w)
        self.timers: list[tuple[float, int, Cell]] = []
        self.lookups: dict[LookupKey, list[tuple[Cell, bool]]] = {}
        self.lookup_results: dict[LookupKey, Check] = {}
        self.out: list[CellOutcome] = []
        self.active = 0
        self.blocking = 0  # cells in flight that may wait on a worker
        self.stats: RunStats = {
            "cells": len(self.specs),
            "lookups": 0,
            "connects": 0,
            "requests": 0,
            "pings": 0,
            "datagrams": 0,
        }
        self.lane: ScanLane | None = ScanLane(self.stats) if scan_lane else None

    @property
    def client(self) -> HttpClient:
        """The batch's HTTP client (its module and library imported on first use only: the
        requests or httpx import costs a tcp-only batch several times its own work)."""
        if self._client is None:
            from .clients import HttpClient

            self._client = HttpClient(self.client_name, self.trust_env, self.env)
        return self._client

    def _warm_up(self) -> None:
        """Import the client and load its CAs on a worker: the tcp cells start meanwhile."""
        from .http import warm_up

        warm_up(self.client)

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> RunStats:
        started = time.monotonic()
        waiting = list(reversed(self.specs))
        # HTTP cells start once their client is ready (its library imported, its CAs loaded:
        # up to a few tenths of a second): that is the process starting, not the network,
        # and must not eat into a cell's timeout. The other cells start at once.
        held: list[CellOrder] = []
        ready = [not any(s["plan"]["kind"] == "http" for s in self.specs)]
        if not ready[0]:
            self.workers.submit(self._warm_up, lambda _r: ready.__setitem__(0, True), _no_answer)
        last_flush = time.monotonic()
        try:
            while (waiting or held or self.active) and not self.stop.is_set():
                if held and ready[0]:
                    waiting.extend(reversed(held))
                    held = []
                self._start_cells(waiting, held, ready[0])
                # Nothing in flight (every cell answered at once, as refused loopback ports
                # are): no wait, or a one-cell run would idle here 50 ms before ending.
                timeout = 0.05 if (self.active or held) else 0.0
                if self.timers:
                    timeout = min(timeout, max(0.0, self.timers[0][0] - time.monotonic()))
                for key, _mask in self.selector.select(timeout):
                    handler, attempt = key.data
                    handler(attempt)
                self._drain_completions()
                self._expire()
                now = time.monotonic()
                if self.out and (len(self.out) >= FLUSH_CELLS or now - last_flush >= FLUSH_SECONDS):
                    self._flush()
                    last_flush = now
            if self.stop.is_set():
                self._cut_short()
            self._flush()
        finally:
            self.workers.close()
            if self._client is not None:
                self._client.close()
            self.selector.close()
            self.wake_r.close()
            self.wake_w.close()
        self.stats["wall_s"] = time.monotonic() - started
        self.stats["stopped"] = self.stop.is_set()
        return self.stats

    def _start_cells(self, waiting: list[CellOrder], held: list[CellOrder], ready: bool) -> None:
        """Start cells off the top of `waiting` (next cell last) while the concurrency allows:
        port-scan cells through the scan lane, http cells into `held` until their client is
        `ready`, the others through their phases. Cells answered at once (loopback) leave in
        groups of FLUSH_CELLS; once the run is stopped, no group is followed by more cells (a
        scan of 100,000 such cells would otherwise run to its end before the cut)."""
        while waiting and self.active < self.concurrency:
            if self.lane is not None:
                pending = self.lane.take(waiting, self.out, FLUSH_CELLS - len(self.out))
                if pending is not None:
                    self._carry_on(pending)
                if len(self.out) >= FLUSH_CELLS:
                    self._flush()
                    if self.stop.is_set():
                        return
                    continue
                if pending is not None or not waiting:
                    continue
            plan = waiting[-1]["plan"]  # a cell the scan lane does not take
            if not ready and plan["kind"] == "http":
                held.append(waiting.pop())
                continue
            if self.blocking >= self.blocking_limit and may_block(plan):
                break  # every worker may be taken: it waits for a cell to end
            self._start(Cell(waiting.pop(), self.default_timeout))
            if len(self.out) >= FLUSH_CELLS:
                self._flush()
                if self.stop.is_set():
                    return

    def _flush(self) -> None:
        if self.out:
            batch, self.out = self.out, []
            self.emit(batch)

    def _drain_wake(self, _unused: object) -> None:
        try:
            while self.wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _drain_completions(self) -> None:
        while True:
            try:
                completion = self.completions.get_nowait()
            except queue.Empty:
                return
            self.workers.busy -= 1
            completion()

    def _expire(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _deadline, _seq, cell = heapq.heappop(self.timers)
            if not cell.done:
                self._time_out(cell)

    # --- phases ---------------------------------------------------------------------------

    def _start(self, cell: Cell) -> None:
        self.active += 1
        cell.may_block = may_block(cell.plan)
        self.blocking += cell.may_block
        cell.started = time.monotonic()
        cell.started_at = time.time()
        cell.deadline = cell.started + cell.timeout
        self._begin(cell)
        if not cell.done:  # a cell answered at once (loopback) needs no timer
            heapq.heappush(self.timers, (cell.deadline, id(cell), cell))

    def _carry_on(self, pending: Pending) -> None:
        """A lane cell whose connect is still in progress becomes an ordinary cell in its tcp
        phase, as _start and _connect would have left it."""
        cell = Cell(pending.spec, self.default_timeout)
        self.active += 1
        cell.started, cell.started_at = pending.started, pending.started_at
        cell.deadline = cell.started + cell.timeout
        cell.host, cell.port = cell.plan["host"], pending.port
        cell.addresses = pending.targets
        cell.phase, cell.phase_started = "tcp", pending.started
        for index, (family, address) in enumerate(pending.targets):

            def connected(record: Check, index: int = index) -> None:
                self._connected(cell, index, record)

            attempt = Attempt(family, address, pending.port, connected)
            cell.attempts.append(attempt)
            if index in pending.records:
                attempt.done = True
                self._connected(cell, index, pending.records[index])
            else:
                attempt.sock, attempt.started = pending.inflight[index]
                self.connector.watch(attempt)
        heapq.heappush(self.timers, (cell.deadline, id(cell), cell))

    def _begin(self, cell: Cell) -> None:
        plan = cell.plan
        kind = plan["kind"]
        if kind == "dns":
            self._lookup(cell, plan["host"], target_check=True)
            return
        if kind == "http":
            # The client's own decision may import its library and build a client: off the
            # loop, on a worker, like every blocking call.
            cell.phase, cell.phase_started = "proxy", time.monotonic()

            def decided(decision: Decision) -> None:
                if not cell.done:
                    self._decided(cell, decision)

            self.workers.submit(partial(self.client.decide, plan["url"]), decided, self._undecided)
            return
        cell.host, cell.port = plan["host"], int(plan.get("port") or 0)
        self._resolve(cell)

    def _undecided(self, message: str) -> Decision:
        """The decision itself failed: an answer all the same."""
        return {"client": self.client.name, "used": False, "error": message}, None

    def _decided(self, cell: Cell, decision: Decision) -> None:
        plan = cell.plan
        cell.proxy, cell.proxy_url = decision
        if cell.proxy.get("error"):
            # The client refuses to send at all here (a NO_PROXY entry it cannot parse,
            # a SOCKS proxy without its package): the user's code fails the same way.
            cell.checks.append(
                {
                    "name": "http",
                    "status": "source-error",
                    "url": plan["url"],
                    "client": self.client.label(),
                    "message": "{} cannot send this request here: {}".format(
                        self.client.name, cell.proxy["error"]
                    ),
                    "duration_ms": (time.monotonic() - cell.phase_started) * 1000.0,
                }
            )
            self._finish(cell)
            return
        if cell.proxy_url:
            cell.host, cell.port, _scheme = proxy_address(cell.proxy_url)
        else:
            cell.host, cell.port = plan["host"], int(plan["port"])
        self._resolve(cell)

    def _resolve(self, cell: Cell) -> None:
        """Addresses for the cell's connect: given, literal, or looked up."""
        plan = cell.plan
        if plan.get("addresses") and not cell.proxy_url:
            cell.addresses = [
                (dns_check.literal_family(a) or socket.AF_INET, a) for a in plan["addresses"]
            ]
            self._reach(cell)
            return
        family = dns_check.literal_family(cell.host)
        if family is not None:
            cell.addresses = [(family, cell.host.strip("[]"))]
            self._reach(cell)
        else:
            self._lookup(cell, cell.host, target_check=False)

    def _lookup(self, cell: Cell, host: str, target_check: bool) -> None:
        """Resolve `host` for `cell`. Cells of the batch asking the same question share one
        lookup, but each waiting cell is continued with its own plan and its own copy of the
        answer: no state of one cell may reach another."""
        plan = cell.plan
        family = plan.get("family", "any") if (target_check or not cell.proxy_url) else "any"
        nameserver = plan.get("nameserver") if target_check else None
        search = tuple(plan.get("search") or ()) if target_check else ()
        ndots = int(plan.get("ndots", 1)) if target_check else 1
        question = dns_check.Question(host, family, nameserver, search, ndots)
        # A nameserver query gives up at the deadline of the cell that asks: a cell with
        # another timeout asks for itself, or it would inherit that cell's patience.
        key: LookupKey = (question, cell.timeout if nameserver else None)
        cell.phase, cell.phase_started = "dns", time.monotonic()
        if key in self.lookup_results:
            self._looked_up(cell, copy_record(self.lookup_results[key]), target_check)
            return
        waiters = self.lookups.get(key)
        if waiters is not None:
            waiters.append((cell, target_check))
            return
        self.lookups[key] = [(cell, target_check)]
        self.stats["lookups"] += 1
        if nameserver:
            remaining = max(cell.deadline - time.monotonic(), 0.001)
            function: Callable[[], Check] = partial(
                dns_check.nameserver_lookup, question, remaining
            )
        else:
            function = partial(dns_check.system_lookup, host, family)

        def answered(record: Check) -> None:
            if record.get("status") == "ok" or record.get("reason") in DEFINITE_ANSWERS:
                # Cells that ask later get it too; a timeout or a failing server is not
                # kept, or one cell's bad luck would become the answer of all that follow.
                self.lookup_results[key] = record
            for waiter, waiter_target_check in self.lookups.pop(key, []):
                if not waiter.done:
                    self._looked_up(waiter, copy_record(record), waiter_target_check)

        self.workers.submit(function, answered, _faulted)

    def _looked_up(self, cell: Cell, record: Check, target_check: bool) -> None:
        record.setdefault("name", "dns")
        record["duration_ms"] = (time.monotonic() - cell.phase_started) * 1000.0
        if target_check:
            dns_check.expect_addresses(record, cell.plan.get("expect_addresses"))
            cell.checks.append(record)
            self._finish(cell)
            return
        if cell.proxy_url:
            record["role"] = "proxy"
        cell.checks.append(record)
        if record.get("status") != "ok":
            if cell.proxy_url:
                record["status"] = "proxy-error"
            self._finish(cell)
            return
        cell.addresses = [
            (dns_check.literal_family(a) or socket.AF_INET, a)
            for a in record.get("addresses") or []
        ]
        self._reach(cell)

    def _reach(self, cell: Cell) -> None:
        """The addresses are known: connect to them (tcp, http), ping them (icmp) or send
        them a datagram (udp)."""
        kind = cell.plan["kind"]
        if kind in ("icmp", "udp") and not cell.proxy_url:
            self._exchange(cell, kind)
        else:
            self._connect(cell)

    def _exchange(self, cell: Cell, kind: str) -> None:
        """A ping or a UDP exchange with every address, on a worker: each is a small loop of
        its own with its own socket kind (and, for ping, maybe the place's ping binary)."""
        plan = cell.plan
        cell.phase, cell.phase_started = kind, time.monotonic()
        remaining = max(cell.deadline - time.monotonic() - EXCHANGE_MARGIN, 0.05)
        self.stats["pings" if kind == "icmp" else "datagrams"] += len(cell.addresses)
        function = echo_check if kind == "icmp" else udp_check

        def answered(records: list[Check]) -> None:
            if cell.done:
                return
            cell.checks.extend(records)
            self._finish(cell)

        def faulted(message: str) -> list[Check]:
            """The check itself failed: the worker's source-error, as the cell's one record."""
            return [
                {"status": "source-error", "message": message, "name": kind, "duration_ms": 0.0}
            ]

        self.workers.submit(partial(function, cell.addresses, plan, remaining), answered, faulted)

    def _connect(self, cell: Cell) -> None:
        cell.phase, cell.phase_started = "tcp", time.monotonic()
        for index, (family, address) in enumerate(cell.addresses):
            self.stats["connects"] += 1

            def connected(record: Check, index: int = index) -> None:
                self._connected(cell, index, record)

            bind = cell.plan.get("bind")
            cell.attempts.append(self.connector.start(family, address, cell.port, connected, bind))
            if cell.done:
                return

    def _connected(self, cell: Cell, index: int, record: Check) -> None:
        if cell.done:
            return
        if cell.proxy_url:
            record["role"] = "proxy"
            if record["status"] != "ok":
                record["status"] = "proxy-error"
                record["message"] = "proxy {} (from {}): {}".format(
                    cell.proxy and cell.proxy.get("url"),
                    cell.proxy and cell.proxy.get("variable"),
                    record["message"],
                )
        if cell.plan.get("bind"):
            record.setdefault("bind", describe(cell.plan.get("bind")))
        cell.tcp_records[index] = record
        if len(cell.tcp_records) < len(cell.addresses):
            return
        ordered = [cell.tcp_records[i] for i in range(len(cell.addresses))]
        cell.checks.extend(ordered)
        cell.attempts = []
        winner = next((r for r in ordered if r["status"] == "ok"), None)
        if winner is None or cell.plan["kind"] != "http":
            self._finish(cell)
            return
        self._request(cell, None if cell.proxy_url else winner["address"])

    def _request(self, cell: Cell, address: str | None) -> None:
        plan = cell.plan
        cell.phase, cell.phase_started = "http", time.monotonic()
        self.stats["requests"] += 1
        remaining = max(cell.deadline - time.monotonic(), 0.001)
        from .http import http_exchange

        exchange = partial(
            http_exchange,
            plan,
            self.client,
            proxy=cell.proxy_url,
            # Kubernetes endpoints name addresses the URL's host does not resolve to.
            address=address if plan.get("addresses") else None,
            timeout=remaining,
        )

        def answered(record: Check) -> None:
            if cell.done:
                return
            record.setdefault("name", "http")
            cell.tls = record.pop("tls", None)
            cell.checks.append(record)
            self._finish(cell)

        self.workers.submit(exchange, answered, _faulted)

    # --- endings --------------------------------------------------------------------------

    def _time_out(self, cell: Cell) -> None:
        endings.time_out(cell, self.connector)
        self._finish(cell)

    def _cut_short(self) -> None:
        """The run was stopped: every cell in flight reports what it finished and the phase it
        was in, for how long ("dns ok 2 ms, tcp connected 1 ms, http waiting 2013 ms"), as a
        cancelled cell."""
        now = time.monotonic()
        for _deadline, _seq, cell in sorted(self.timers, key=lambda t: t[1]):
            if not cell.done:
                endings.cut_short(cell, self.connector, now)
                self._finish(cell)

    def _finish(self, cell: Cell) -> None:
        if cell.done:
            return
        cell.done = True
        self.active -= 1
        self.blocking -= cell.may_block
        status = next((c["status"] for c in cell.checks if c.get("status") != "ok"), "ok")
        result: CellOutcome = {
            "id": cell.id,
            "status": status,
            "started_at": cell.started_at,
            "duration_ms": (time.monotonic() - cell.started) * 1000.0,
            "checks": cell.checks,
        }
        if cell.proxy is not None:
            result["proxy"] = cell.proxy
        if cell.tls is not None:
            result["tls"] = cell.tls
        if cell.cut:
            result["status"] = "cancelled"
            result["message"] = endings.phase_summary(cell.checks)
        self.out.append(result)


def run_batch(
    request: Batch,
    emit: Emit,
    stop: threading.Event | None = None,
    env: Mapping[str, str] | None = None,
) -> RunStats:
    """Run every cell of `request`; call `emit` with finished results; return run statistics."""
    return Runner(request, emit, stop, env).run()


def _faulted(message: str) -> Check:
    """A check whose own code failed (not the network): still an answer."""
    return {"status": "source-error", "message": message}


def _no_answer(_message: str) -> None:
    return None
