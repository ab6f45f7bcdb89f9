"""A cell answers the same in any matrix as it does alone, on loopback (see tests/metamorphic.py).

Sources: this process, child Pythons (with and without a dead proxy, requests and httpx rules),
and curl, nc, bash and wget as a user runs them. Targets share names, addresses and ports: an
HTTP service, a closed port, a listener that accepts and holds (silent), one that resets, a full
accept queue (connect timeout), and DNS through the system resolver (localhost only: no made-up
name ever reaches this machine's resolver) or through the loopback DNS fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import yaml

from probe_engine.demo.fixtures import LoopbackLab

from .metamorphic import AloneOracle, Atom, Generated, generate, run, sweep

MATRICES = int(os.environ.get("PE_METAMORPHIC_MATRICES", "200"))
# Cells that must answer get plenty of time on a loaded machine (they take milliseconds); a
# target that never answers carries a short timeout of its own, so the deadline decides it,
# whatever the load.
DEFAULTS = {"timeout": "10s"}
SLOW = "400ms"
# Listeners that accept but never speak HTTP: a tcp probe through curl or wget still waits for
# an answer (the tools' own artefact, issue #11) until this deadline.
TOOL_WAITS = "1s"
NAMESERVER_DNS = frozenset({"dns-ns-ok", "dns-ns-nx", "dns-ns-search", "dns-ns-ok-quick"})


def pools(lab: LoopbackLab) -> tuple[list[Atom], list[Atom]]:
    http, closed = lab.http_port, lab.closed_port
    hang, reset, backlog = lab.hanging.port, lab.resetting.port, lab.backlog.port
    dead_proxy = f"http://127.0.0.1:{lab.dead_proxy_port}"
    nameserver = f"127.0.0.1:{lab.dns.port}"
    shell = {"inherit_env": False}
    sources = [
        Atom("here", {"kind": "local", "trust_env": False}),
        Atom("py", {"kind": "process", "inherit_env": False}),
        Atom(
            "py-proxy",
            {"kind": "process", "inherit_env": False, "env": {"HTTP_PROXY": dead_proxy}},
        ),
        Atom(
            "py-httpx-proxy",
            {
                "kind": "process",
                "inherit_env": False,
                "http_client": "httpx",
                "env": {"http_proxy": dead_proxy, "no_proxy": "127.0.0.1"},
            },
        ),
        *(
            Atom(tool, {"kind": "shell", "tool": tool, **shell}, avoid=NAMESERVER_DNS)
            for tool in ("curl", "nc", "bash", "wget")
        ),
        Atom(
            "curl-proxy",
            {"kind": "shell", "tool": "curl", **shell, "env": {"http_proxy": dead_proxy}},
            avoid=NAMESERVER_DNS,
        ),
    ]
    targets = [
        Atom("tcp-open-ip", {"kind": "tcp", "host": "127.0.0.1", "port": http}),
        Atom("tcp-open-name", {"kind": "tcp", "host": "localhost", "port": http}),
        Atom("tcp-closed-ip", {"kind": "tcp", "host": "127.0.0.1", "port": closed}),
        Atom("tcp-closed-name", {"kind": "tcp", "host": "localhost", "port": closed}),
        Atom(
            "tcp-silent", {"kind": "tcp", "host": "localhost", "port": hang, "timeout": TOOL_WAITS}
        ),
        Atom(
            "tcp-reset", {"kind": "tcp", "host": "127.0.0.1", "port": reset, "timeout": TOOL_WAITS}
        ),
        Atom(
            "tcp-backlog",
            {"kind": "tcp", "host": "127.0.0.1", "port": backlog, "timeout": SLOW},
        ),
        Atom(
            "tcp-ports",
            {
                "kind": "tcp",
                "host": "localhost",
                "ports": [http, closed, hang],
                "timeout": TOOL_WAITS,
            },
        ),
        Atom(
            "http-ok-name",
            {"kind": "http", "url": f"http://localhost:{http}/health", "expect_status": [200]},
        ),
        Atom("http-ok-ip", {"kind": "http", "url": f"http://127.0.0.1:{http}/health"}),
        Atom("http-error", {"kind": "http", "url": f"http://localhost:{http}/error"}),
        Atom("http-closed", {"kind": "http", "url": f"http://localhost:{closed}/"}),
        Atom("http-closed-ip", {"kind": "http", "url": f"http://127.0.0.1:{closed}/"}),
        Atom(
            "http-silent",
            {"kind": "http", "url": f"http://127.0.0.1:{hang}/", "timeout": SLOW},
        ),
        # wget retries a reset request until its deadline.
        Atom("http-reset", {"kind": "http", "url": f"http://localhost:{reset}/", "timeout": "3s"}),
        Atom("dns-localhost", {"kind": "dns", "name": "localhost"}),
        Atom(
            "dns-localhost-v4",
            {
                "kind": "dns",
                "name": "localhost",
                "family": "ipv4",
                "expect_addresses": ["127.0.0.1"],
            },
        ),
        Atom(
            "dns-localhost-wrong",
            {"kind": "dns", "name": "localhost", "expect_addresses": ["127.0.0.2"]},
        ),
        Atom("dns-ns-ok", {"kind": "dns", "name": "api.demo.internal", "nameserver": nameserver}),
        Atom(
            "dns-ns-ok-quick",
            {
                "kind": "dns",
                "name": "api.demo.internal",
                "nameserver": nameserver,
                "timeout": "3s",
            },
        ),
        Atom(
            "dns-ns-nx", {"kind": "dns", "name": "nosuch.demo.internal", "nameserver": nameserver}
        ),
        Atom(
            "dns-ns-search",
            {
                "kind": "dns",
                "name": "api",
                "nameserver": nameserver,
                "search": ["nope.internal", "demo.internal"],
                "ndots": 1,
            },
        ),
    ]
    return sources, targets


@pytest.fixture(scope="module")
def lab() -> Iterator[LoopbackLab]:
    with LoopbackLab() as fixtures:
        yield fixtures


def test_the_story_of_the_issue_closed_ports_are_refused_whatever_the_order(
    lab: LoopbackLab,
) -> None:
    """The matrix of issue #10: a dns cell first made the http and tcp cells on the same name
    `ok` with a dns check only. Every order gives the same, true answer."""
    targets = {
        "a-dns": {"kind": "dns", "name": "localhost"},
        "b-http": {"kind": "http", "url": f"http://localhost:{lab.closed_port}/"},
        "c-tcp": {"kind": "tcp", "host": "localhost", "port": lab.closed_port},
    }
    for order in (["a-dns", "b-http", "c-tcp"], ["c-tcp", "b-http", "a-dns"]):
        text = yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"timeout": "5s"},
                "sources": {"here": {"kind": "local"}, "py": {"kind": "process"}},
                "targets": {name: targets[name] for name in order},
            }
        )
        grid = run(text, {}).grid()
        for source in ("here", "py"):
            assert grid[(source, "a-dns")].status == "ok"
            for target in ("b-http", "c-tcp"):
                cell = grid[(source, target)]
                assert cell.status == "refused", (order, source, target, cell)
                assert [c.name for c in cell.checks] == ["dns", "tcp"]
                assert cell.checks[1].errno_name == "ECONNREFUSED"


def test_a_lookup_never_waits_behind_its_neighbours_hanging_requests(lab: LoopbackLab) -> None:
    """64 requests to a silent server held every worker thread of the agent; a dns cell that
    started after them waited for a thread until its own deadline and reported a working name
    as a timeout. Each cell in flight now has a worker of its own."""
    silent = {"kind": "http", "url": f"http://127.0.0.1:{lab.hanging.port}/", "timeout": "4s"}
    backlog = {"kind": "tcp", "host": "127.0.0.1", "port": lab.backlog.port, "timeout": "200ms"}
    targets: dict[str, object] = {f"h{i:02d}": silent for i in range(64)}
    # Three quick timeouts free places in the run for the dns cells, not worker threads.
    targets.update({f"q{i}": backlog for i in range(3)})
    nameserver = f"127.0.0.1:{lab.dns.port}"
    targets["z-dns"] = {"kind": "dns", "name": "api.demo.internal", "nameserver": nameserver}
    targets["z-system"] = {"kind": "dns", "name": "localhost"}
    text = yaml.safe_dump(
        {
            "version": 1,
            "defaults": {"timeout": "2s", "concurrency": 66},
            "sources": {"here": {"kind": "local"}},
            "targets": targets,
        }
    )
    grid = run(text, {}).grid()
    assert grid[("here", "h00")].status == "timeout"
    for name in ("z-dns", "z-system"):
        assert grid[("here", name)].status == "ok", grid[("here", name)]


def test_every_cell_answers_as_it_does_alone(lab: LoopbackLab) -> None:
    sources, targets = pools(lab)
    oracle = AloneOracle(DEFAULTS)

    def make(seed: int) -> Generated:
        return generate(seed, sources, targets, DEFAULTS)

    outcome = sweep(range(MATRICES), make, oracle, parallel=4)
    assert outcome.matrices == MATRICES
    assert not outcome.found, "\n\n".join(str(d) for d in outcome.found[:5])
    # The sweep covered what it claims: every kind of row met every kind of column.
    assert outcome.cells > 10 * MATRICES // 2
    assert {s[0] for s in oracle.known} == {a.key for a in sources}
    assert {s[1] for s in oracle.known} == {a.key for a in targets}
