"""The README says what the product does: its demo excerpt is what `probe-engine demo` prints,
and its Diagnosis section lists every rule with an example that a real run of the test suite
produced (the golden files of tests/golden.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from probe_engine.diagnose import RULES

from .golden import GOLDEN, read_golden

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def normalised(text: str) -> str:
    """What may differ between two runs of the demo: loopback ports and the run's duration;
    and the padding a terminal table carries at line ends."""
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r" in \d+\.\d+s ", " in N.NNs ", text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def test_the_readme_shows_what_the_demo_prints(tmp_path: Path) -> None:
    block = README.split("```\n$ probe-engine demo\n", 1)[1].split("```", 1)[0]
    environment = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    printed = subprocess.run(
        [str(Path(sys.executable).parent / "probe-engine"), "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    shown = printed.stdout.replace(str(tmp_path), "reports")
    assert normalised(block) == normalised(shown)


def diagnosis_rows() -> dict[str, str]:
    """rule id -> its example, from the README's Diagnosis table."""
    section = README.split("## Diagnosis\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z-]+)` \| [^|]+ \| (.+) \|$", section, re.M)
    return dict(rows)


def test_the_diagnosis_section_lists_every_rule_with_a_real_example() -> None:
    rows = diagnosis_rows()
    assert list(rows) == list(RULES)  # every rule, in the order they run
    titles: dict[str, set[str]] = {}
    for path in sorted(GOLDEN.glob("*.txt")):
        golden = read_golden(path.stem)
        titles.setdefault(golden["rule"], set()).add(golden["title"])
    for rule, example in rows.items():
        assert example in titles.get(rule, set()), f"{rule}: {example!r} is not a golden title"


def test_every_rule_has_a_golden_file() -> None:
    rules = {read_golden(path.stem)["rule"] for path in GOLDEN.glob("*.txt")}
    assert rules == set(RULES)
