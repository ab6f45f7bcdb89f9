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

The errno table itself lives in `probe_engine.agent.classify`, which the agent carries.
"""

from __future__ import annotations

from typing import Literal

Status = Literal[
    "ok",
    "refused",
    "timeout",
    "unreachable",
    "dns-error",
    "reset",
    "http-error",
    "tls-error",
    "proxy-error",
    "source-error",
    "target-error",
    "cancelled",
]
