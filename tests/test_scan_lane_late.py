"""The scan lane when the kernel's answers come late: a connect still in progress when connect()
returns is carried on by the runner (scan.Pending, Runner._carry_on, Connector.watch), and
its late answer, connected or refused, must be the phases' own. On this machine's loopback
the answers come inside connect(), so the batch runs in a network namespace of its own whose
loopback is slowed by a token bucket (tc tbf), its queue filled ahead of the SYNs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import require

REPO = Path(__file__).resolve().parent.parent
LATE = "tests.late_answers"  # the batch, run both ways inside the namespace
SLOW_LOOPBACK = (
    "ip link set lo up && ip link set lo mtu 1500 && "
    'tc qdisc add dev lo root tbf rate 1mbit burst 1600 latency 10s && exec "$@"'
)


def test_late_answers_through_the_lane_are_the_phases_records() -> None:
    require(os.geteuid() == 0, "a network namespace of its own needs root")
    require(all(shutil.which(t) for t in ("unshare", "ip", "tc")), "unshare, ip, tc missing")
    ran = subprocess.run(
        ["unshare", "--net", "sh", "-c", SLOW_LOOPBACK, "sh", sys.executable, "-m", LATE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    answers = json.loads(ran.stdout)
    lane, phases = answers["lane"], answers["phases"]
    # The lane's connects (8, over 6 cells) were still in progress at connect()'s return:
    # carried on, not answered in the lane. (All of them but on a badly stalled machine.)
    assert lane["carried_on"] >= 1
    assert lane["outcomes"] == phases["outcomes"]
    statuses = {
        cell: [c["status"] for c in outcome["checks"]] for cell, outcome in lane["outcomes"].items()
    }
    assert statuses == {
        "1": ["ok"],
        "2": ["refused"],
        "3": ["ok"],
        "4": ["refused"],
        "5": ["ok", "refused"],  # the port listens on ::1 only
        "6": ["ok", "refused"],
    }
