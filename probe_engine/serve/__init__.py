"""`probe-engine serve`: the matrix on a schedule, for Prometheus and for people.

    options -> Scheduler (scheduler.py: ticks, runs, one-off cells; history.py: since when)
            -> MatrixFile (matrix_file.py: reload on change or SIGHUP, keep the old on error)
            -> the HTTP endpoints (app.py) and /metrics (metrics.py)

`serve()` wires them and owns the process's life: SIGHUP reloads, SIGTERM or SIGINT stop it
cleanly (the run in flight is interrupted, its child processes stopped, exit status 0).
"""

from __future__ import annotations

from .options import ServeOptions, parse_listen
from .server import serve

__all__ = ["ServeOptions", "parse_listen", "serve"]
