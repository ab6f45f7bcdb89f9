"""`python -m bench`: run every measurement of bench/run.py and print the table.

`python -m bench --all [--huge]` runs every figure the project states, one after the other:
bench/run.py, bench/agent.py (the agent's loop against a bare connect_ex loop), bench/netlab.py
(the namespace lab's set-up; root), bench/scan.py (the command line against nmap, one-cell
runs, 10,000 cells' reports in Chromium; --huge adds 100,000 cells), bench/one_cell.py (a
one-cell run beside `python -c pass` and --version), bench/engine_side.py (what the engine does
with a scan's answers, stage by stage), bench/hostile.py,
bench/docker_vs_local.py and bench/remote_start.py (the agent's start and 500 cells from
process, netns, docker and pod exec against local; root and Docker's packages: they say so and
go on without them). Each prints its table and writes its results file; the exit status is the
worst of theirs.
"""

import sys

from . import run

arguments = sys.argv[1:]
if "--all" in arguments:
    from . import agent, docker_vs_local, engine_side, hostile, netlab, one_cell, remote_start, scan

    statuses = [
        run.main([]),
        agent.main([]),
        netlab.main([]),
        scan.main(["--huge"] if "--huge" in arguments else []),
        one_cell.main([]),
        engine_side.main([]),
        hostile.main([]),
        docker_vs_local.main([]),
        remote_start.main([]),
    ]
    raise SystemExit(max(statuses))
raise SystemExit(run.main())
