"""Golden texts of the diagnosis: a finding's rule, severity, title, detail and next step, word
for word, from a real run, against tests/data/golden/diagnosis/NAME.txt.

What changes from run to run (loopback ports, temporary paths, clocks, durations) is named
before comparing: a port becomes HTTP_PORT, a time HH:MM:SS.mmm. Everything else is the text
a user reads. `UPDATE_GOLDEN=1` rewrites the files (then read the diff before committing).
The README's "Diagnosis" section quotes these titles; tests/test_readme.py holds it to them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.results import Finding

GOLDEN = Path(__file__).parent / "data" / "golden" / "diagnosis"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
FIELDS = ("rule", "severity", "title", "detail", "next_step")

# What varies on its own: clocks, durations, gaps measured by the run.
VARYING = [
    (re.compile(r"\b\d\d:\d\d:\d\d\.\d{3}\b"), "HH:MM:SS.mmm"),
    (re.compile(r"\b\d+\.\d\d s later\b"), "N.NN s later"),
    (re.compile(r"\bhad been at it \d+ ms\b"), "had been at it N ms"),
    (re.compile(r"\b\d+ ms\b"), "N ms"),
    (re.compile(r"net:\[\d+\]"), "net:[INODE]"),
    (re.compile(r"certifi \d[\w.]*"), "certifi VERSION"),
    (re.compile(r"\b(requests|httpx) \d+\.\d+(?:\.\d+)?\b"), r"\1 VERSION"),
]


def ports(lab: LoopbackLab) -> dict[str, str]:
    """The loopback lab's ports by name: {'41377': 'CLOSED_PORT', ...}."""
    named = {}
    for variable, value in lab.variables().items():
        port = value.rsplit(":", 1)[-1]
        name = variable.removeprefix("PE_DEMO_")
        named[port] = name if name.endswith("_PORT") else f"{name}_PORT"
    return named


def golden_text(
    finding: Finding, names: Mapping[str, str], same: Mapping[str, str] | None = None
) -> str:
    """The finding as the golden file holds it, `names` (value -> NAME) applied, then `same`
    (text -> text: spellings that differ only by chance, like two ports next to each other)."""
    text = "".join(f"{field}: {getattr(finding, field)}\n" for field in FIELDS)
    for value, name in sorted(names.items(), key=lambda item: -len(item[0])):
        text = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w])", name, text)
    for pattern, word in VARYING:
        text = pattern.sub(word, text)
    for chance, kept in (same or {}).items():
        text = text.replace(chance, kept)
    return text


def read_golden(name: str) -> dict[str, str]:
    """A golden file's fields."""
    lines = (GOLDEN / f"{name}.txt").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def check_golden(
    finding: Finding,
    name: str,
    names: Mapping[str, str] | None = None,
    same: Mapping[str, str] | None = None,
) -> None:
    """The finding's words equal the golden file NAME (rewritten under UPDATE_GOLDEN=1)."""
    text = golden_text(finding, names or {}, same)
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path} (UPDATE_GOLDEN=1 writes it)"
    assert text == path.read_text(), f"{name}: the words changed"
