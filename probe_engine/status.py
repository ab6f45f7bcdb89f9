"""The closed set of outcomes of a cell or a check.

| status       | from                                                                  |
|--------------|-----------------------------------------------------------------------|
| ok           | connected / resolved / expected HTTP status                           |
| refused      | ECONNREFUSED (a closed port, or a REJECT --reject-with tcp-reset)     |
| timeout      | ETIMEDOUT from the kernel, or no answer within the probe's deadline   |
| unreachable  | EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN, EADDRNOTAVAIL, EACCES, EPERM |
| dns-error    | getaddrinfo EAI_* (EAI_NONAME = NXDOMAIN, EAI_AGAIN = no answer), rcodes |
| reset        | ECONNRESET, ECONNABORTED, EPIPE; the server closed without an answer  |
| http-error   | an HTTP status outside the expected ones                              |
| tls-error    | an SSL/TLS handshake or certificate failure                           |
| proxy-error  | the proxy could not be resolved or reached, or answered 407/502/503/504 |
| source-error | the probe could not run there (no such container, no python, ...)     |
| target-error | the target could not be turned into an address (no such Service, ...) |
| cancelled    | the run was interrupted or its deadline passed before the cell ran    |

The statuses and the errno table live in `probe_engine.agent.classify`, which the agent
carries; this module re-exports the vocabulary for the engine, with the run's exit statuses.
"""

from __future__ import annotations

from typing import Literal

from .agent.classify import FAILED, STATUSES, Status

__all__ = [
    "EXIT_ENGINE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNMET",
    "EXIT_USAGE",
    "FAILED",
    "STATUSES",
    "FailOn",
    "Status",
]

# The exit status of a run (and of every command): what a CI job or a shell script reads.
EXIT_OK = 0  # every expectation met (or none declared and --fail-on allows)
EXIT_UNMET = 1  # some cell missed its expectation (a wait: not ready in time)
EXIT_USAGE = 2  # bad input or usage, before any probe was sent
EXIT_ENGINE = 3  # the engine itself failed
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM; reports are still written
# Which cells make the exit status 1: unmet expectations, or also failures nobody declared.
FailOn = Literal["unmet", "any-failure", "never"]
