"""report.md: a summary for CI step summaries and pull requests (GitHub-flavoured Markdown)."""

from __future__ import annotations

import re

from ..results import Finding, MatrixResult
from .templating import environment
from .view import (
    LEGEND,
    STATUS_SYMBOL,
    cell_label,
    cell_reason,
    column_groups,
    expectation,
    grid,
    group_counts,
    group_unmet,
    more_evidence,
    unmet,
    utc_time,
)

# GitHub refuses a step summary over 1 MiB; the unmet table is what grows with a matrix (a scan's
# columns are folded into groups): past this many rows it says how many more there are.
UNMET_ROWS = 1000
LIMIT = 1024 * 1024
CUT_NOTE = (
    "\n\n> **Cut here**: this summary would pass GitHub's 1 MiB limit for a step summary; "
    "every cell is in report.json and report.html.\n"
)

# Names and messages are plain text, never Markdown: a source called `<script>`, a message with
# `|` or `*`, must show as written and neither run as HTML nor break the table. CommonMark lets
# any ASCII punctuation be backslash-escaped; these are the ones that mean something inline.
_INLINE = re.compile(r"([\\`*_\[\]<>&|~])")
# Block markers only matter where a text starts a line (a finding's detail does).
_LINE_START = re.compile(r"^(\s*)([#+\-=])")
_ORDERED = re.compile(r"^(\s*\d+)([.)])")
_NEWLINES = re.compile(r"\r\n|\r|\n")


def md_text(text: str) -> str:
    """Plain text as Markdown that renders literally, on one line, safe in a table cell."""
    one_line = _NEWLINES.sub(" ", text)
    escaped = _INLINE.sub(r"\\\1", one_line)
    return _ORDERED.sub(r"\1\\\2", _LINE_START.sub(r"\1\\\2", escaped))


_CODE_SPAN = re.compile(r"(`[^`\n]+`)")


def md_prose(text: str) -> str:
    """Like md_text, but `command` spans a diagnosis marks stay code spans (literal anyway)."""
    parts = _CODE_SPAN.split(_NEWLINES.sub(" ", text))
    return "".join(
        part if index % 2 else (md_text(part) if index == 0 else _INLINE.sub(r"\\\1", part))
        for index, part in enumerate(parts)
    )


def md_code(text: str) -> str:
    """A code span holding `text` literally, whatever backticks it contains."""
    one_line = _NEWLINES.sub(" ", text)
    longest = max((len(run) for run in re.findall(r"`+", one_line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def shorten(text: str, limit: int = 160) -> str:
    """Cut before escaping, so an escape is never split in two."""
    text = _NEWLINES.sub(" ", text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def md_evidence(finding: Finding) -> str:
    """'a → b (refused), c → d (ok) and 4998 more cells'."""
    cited = ", ".join(
        f"{md_text(e.source)} → {md_text(e.target)} ({e.status})" for e in finding.evidence
    )
    more = more_evidence(finding)
    return cited + (f" and {more} more cells" if more else "")


SERVER_LOG_ROWS = 50  # cells whose server's side is listed; report.json has them all


def render_markdown(result: MatrixResult) -> bytes:
    template = environment(autoescape=False).get_template("report.md.j2")
    view = grid(result)
    text = template.render(
        result=result,
        grid=view,
        groups=column_groups(result, view),
        tally=group_counts,
        unmet_in=group_unmet,
        unmet_rows=UNMET_ROWS,
        unmet=unmet(result),
        server_logs=[c for c in result.cells if c.server_log is not None][:SERVER_LOG_ROWS],
        server_logs_total=sum(1 for c in result.cells if c.server_log is not None),
        symbol=STATUS_SYMBOL,
        label=cell_label,
        reason=cell_reason,
        md=md_text,
        prose=md_prose,
        code=md_code,
        shorten=shorten,
        when=utc_time,
        mark=expectation,
        evidence=md_evidence,
        legend=md_text(LEGEND),
    )
    return fit(text.encode())


def fit(data: bytes, limit: int = LIMIT) -> bytes:
    """The summary, cut at a line's end with a note where it would pass `limit` bytes."""
    if len(data) <= limit:
        return data
    note = CUT_NOTE.encode()
    end = data.rfind(b"\n", 0, limit - len(note))
    return data[: max(end, 0)] + note
