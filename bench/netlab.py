"""How long the namespace lab takes to build and to tear down (the tests pay it once a session).

    sudo .venv/bin/python -m bench.netlab [--repeats 5]

Brings the lab of tests/lab/netlab.py up and down under a prefix of the bench's own and prints
the best and median times. Goal: up well under a second (the tests share one lab per session,
so this is what a developer waits for before the first lab test). Not a test: a MISS is a number
to look at. Nothing leaves the lab's own namespaces.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

from tests.lab.netlab import Lab, missing_prerequisites

GOAL_UP_SECONDS = 1.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.netlab")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prefix", default="pe-bench")
    args = parser.parse_args(argv)
    problems = missing_prerequisites()
    if problems:
        print("the namespace lab cannot run here: " + "; ".join(problems))
        return 2
    ups: list[float] = []
    downs: list[float] = []
    for _ in range(args.repeats):
        lab = Lab.up(args.prefix)
        lab.down()
        assert lab.up_seconds is not None
        assert lab.down_seconds is not None
        ups.append(lab.up_seconds)
        downs.append(lab.down_seconds)
    verdict = "PASS" if statistics.median(ups) < GOAL_UP_SECONDS else "MISS"
    print(
        f"lab up: best {min(ups):.3f} s, median {statistics.median(ups):.3f} s "
        f"(goal < {GOAL_UP_SECONDS:.0f} s: {verdict}); "
        f"down: best {min(downs):.3f} s, median {statistics.median(downs):.3f} s"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
