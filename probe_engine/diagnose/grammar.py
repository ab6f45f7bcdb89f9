"""The grammar every finding shares: exact counts of sources ("from 2 of 4 sources that probed
it", "from both sources"), verbs that agree with their subject, lists and port ranges that
stay one line. Words.py phrases every rule with these, so two findings never count or list
differently."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

NUMBERS = {2: "both", 3: "all 3"}


def listing(names: Sequence[str], limit: int = 4) -> str:
    """'a, b, c and 2 more': a readable list that stays one line, each name once."""
    names = list(dict.fromkeys(names))
    if len(names) <= 1:
        return "".join(names)
    if len(names) <= limit:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def verb(count: int, singular: str, plural: str) -> str:
    """The verb form for `count` subjects: verb(1, 'works', 'work')."""
    return singular if count == 1 else plural


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 cell', '3 cells', '2 addresses' (nouns given when not noun + 's')."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def scope(failing: Sequence[str], probed: Sequence[str], rows: int) -> str:
    """From where something fails, with exact counts.

    `failing`: the rows it fails from; `probed`: the rows whose cells say something about it
    (failing ones included); `rows`: every row of the matrix. 'from here', 'from both
    sources', 'from all 4 sources', 'from 2 of 4 sources', and '... that probed it' when
    some rows did not probe it (excluded, or their probe could not run).
    """
    failing = list(dict.fromkeys(failing))
    probed = list(dict.fromkeys([*probed, *failing]))
    n, m = len(failing), len(probed)
    that = " that probed it" if m < rows else ""
    if m == 1:
        return f"from {failing[0]}" + (" (the only source that probed it)" if that else "")
    if n == m:
        every = NUMBERS.get(m, f"all {m}")
        return f"from {every} sources{that}"
    if n == 1:
        return f"from {failing[0]} (1 of {m} sources{that})"
    return f"from {n} of {m} sources{that}"


def port_ranges(ports: Iterable[int], limit: int = 6) -> str:
    """'22, 80-90 and 8000': consecutive ports as ranges; past `limit` ranges, '... and N more
    ranges'."""
    given = set(ports)
    # A range starts where the port below is not given and ends where the one above is not
    # (set arithmetic, in C: a scan's summary has 5000 ports).
    starts = sorted(given - set(map((1).__add__, given)))
    ends = sorted(given - set(map((-1).__add__, given)))
    words = [str(a) if a == b else f"{a}-{b}" for a, b in zip(starts, ends)]
    if len(words) > limit:
        return ", ".join(words[:limit]) + f" and {len(words) - limit} more ranges"
    return listing(words, limit)


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def ended(text: str) -> str:
    """A sentence with one full stop: messages quoted from an API often bring their own."""
    return text if text.endswith((".", "!", "?")) else text + "."
