"""The shell prober as the remote runner starts it, in any place: the command, its input, and
its session (a preamble of facts from inside, one result line per cell, done).

Where the command travels in a URL (a pod exec), the ~10 KB script would pass request-line
limits (8 KiB in aiohttp and many proxies): there the command holds only a small loader, which
reads the preamble and the script from stdin up to "@@SCRIPT" and runs them with its own
arguments; the script then reads the cells that follow. Elsewhere the script is the argument,
as a user would run it (a shell reading it line by line costs up to 60 ms in bash).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..agent.facts import has_default_route, ipv4_routes, local_addresses, resolv_conf
from ..model import CellRequest
from .channel import Leftover
from .session import Report, Session
from .shell_tools import classify_line, request_lines, script

PROBER_LOADER = """s=
while IFS= read -r l; do
  [ "$l" = @@SCRIPT ] && break
  s="$s$l
"
done
eval "$s"
"""

# Printed before the prober's own lines (no Python there to say hello): its pid, the network
# namespace, the files the agent's facts come from, the tools found, and whether the requested
# tool exists (@@X and exit 127 if not). POSIX sh builtins only; values from the matrix never
# appear here.
SHELL_PREAMBLE = r"""
printf '@@P\t%s\t%s\n' "$$" "$(readlink /proc/$$/ns/net 2>/dev/null)"
for f in /etc/hostname /etc/resolv.conf /proc/net/route /proc/net/fib_trie /proc/net/if_inet6; do
  if [ -r "$f" ]; then
    while IFS= read -r l || [ -n "$l" ]; do printf '@@F\t%s\t%s\n' "$f" "$l"; done < "$f"
  fi
done
for t in curl wget nc bash getent nslookup timeout; do
  p=$(command -v "$t" 2>/dev/null) && printf '@@T\t%s\t%s\n' "$t" "$p"
done
if [ "${1:-auto}" != auto ] && ! command -v "$1" >/dev/null 2>&1; then
  printf '@@X\t%s\n' "$1"
  exit 127
fi
printf '@@E\n'
"""


def prober_launch(
    tool: str, concurrency: int, batch: Sequence[CellRequest], *, loader: bool = False
) -> tuple[list[str], bytes]:
    """The shell prober's command and whole stdin: the preamble and the script as the
    command's argument, or with `loader` on stdin ahead of the cells."""
    arguments = ["probe", tool, str(concurrency)]
    if loader:
        program = (SHELL_PREAMBLE + script()).encode() + b"\n@@SCRIPT\n"
        return ["sh", "-c", PROBER_LOADER, *arguments], program + request_lines(batch)
    return ["sh", "-c", SHELL_PREAMBLE + script(), *arguments], request_lines(batch)


class ShellFacts:
    """Collects the preamble's lines into the same facts the agent's hello carries."""

    def __init__(self) -> None:
        self.files: dict[str, list[str]] = {}
        self.tools: dict[str, str] = {}
        self.pid: int | None = None
        self.netns: str | None = None
        self.missing: str | None = None
        self.ended = False

    def feed(self, line: str) -> bool:
        """Take a preamble line; False if it is not one."""
        fields = line.rstrip("\r\n").split("\t")
        marker = fields[0]
        if marker == "@@F" and len(fields) >= 3:
            self.files.setdefault(fields[1], []).append("\t".join(fields[2:]))
        elif marker == "@@T" and len(fields) >= 3:
            self.tools[fields[1]] = fields[2]
        elif marker == "@@P" and len(fields) >= 2:
            self.pid = int(fields[1]) if fields[1].isdigit() else None
            self.netns = fields[2] if len(fields) > 2 and fields[2] else None
        elif marker == "@@X" and len(fields) >= 2:
            self.missing = fields[1]
        elif marker == "@@E":
            self.ended = True
        else:
            return False
        return True

    def _text(self, path: str) -> str | None:
        lines = self.files.get(path)
        return None if lines is None else "\n".join(lines) + "\n"

    def facts(self) -> dict[str, Any]:
        routes = ipv4_routes(self._text("/proc/net/route"))
        hostname = (self._text("/etc/hostname") or "").strip() or None
        return {
            "hostname": hostname,
            "pid": self.pid,
            "netns": self.netns,
            "resolv_conf": resolv_conf(self._text("/etc/resolv.conf")),
            "routes": routes,
            "default_route": has_default_route(routes),
            "addresses": local_addresses(
                self._text("/proc/net/fib_trie"), self._text("/proc/net/if_inet6")
            ),
            "tools": dict(self.tools),
        }


class ProberSession(Session):
    """The prober's lines: the preamble (facts, to `on_facts` once it ends), `@@R` per cell,
    `@@D` at the end. `env`, the tools' environment where the source knows it, names where
    curl's CAs came from and the HTTP_PROXY curl ignores."""

    program = "the shell prober"

    def __init__(
        self,
        batch: Sequence[CellRequest],
        report: Report,
        env: Mapping[str, str] | None,
        on_facts: Callable[[dict[str, Any]], None],
    ) -> None:
        super().__init__(batch, report)
        self.env = env
        self.on_facts = on_facts
        self.by_id = {str(r.id): r for r in batch}
        self.preamble = ShellFacts()
        self.begun = time.monotonic()

    @property
    def missing_tool(self) -> str | None:
        """The tool asked for, when the place does not have it."""
        return self.preamble.missing

    def feed(self, line: bytes) -> None:
        text = line.decode(errors="replace")
        if text.startswith("@@R\t"):
            self._result(text)
        elif text.startswith("@@D"):
            self.finished = True
        elif self.preamble.feed(text):
            if self.preamble.pid is not None:
                self.started, self.pid = True, self.preamble.pid
            if self.preamble.ended:  # the preamble is over: the row's facts from inside
                self.preamble.ended = False
                self.on_facts(self.preamble.facts())
        else:
            self.keep_noise(text)

    def _result(self, line: str) -> None:
        request = self.by_id.get(line.split("\t", 2)[1])
        if request is None or request.id in self.answered:
            return
        data = classify_line(line, request, self.env)
        if data["duration_ms"] is None:  # no nanosecond clock there: time of arrival
            data["duration_ms"] = (time.monotonic() - self.begun) * 1000.0
        proxy = data.get("proxy")
        url = request.plan.get("url", "")
        upper = bool(self.env and self.env.get("HTTP_PROXY")) and url.startswith("http:")
        if proxy is not None and upper and proxy.get("variable") != "HTTP_PROXY":
            proxy["ignored"] = ["HTTP_PROXY"]  # set, and curl never reads it (httpoxy)
        self.answer(request, data)

    def leftover(self, cut_short: bool) -> Leftover | None:
        # The cells' tools outlive the shell (a killed prober leaves its nc behind): its
        # whole process group goes unless it said done.
        if (cut_short or not self.finished) and self.pid is not None and self.pid > 1:
            return Leftover(self.pid, None)
        return None
