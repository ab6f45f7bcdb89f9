"""What every rule's phrasing shares: the Words a phrase returns and the counts of rows and
outcomes ('from 2 of 4 sources')."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from ...results import CellResult, MatrixResult
from ..cause import Cause
from ..phrasing import (
    column_words,
)


class Words(NamedTuple):
    title: str
    detail: str
    next_step: str


Phrase = Callable[[Cause, MatrixResult], Words]


def rows_total(result: MatrixResult) -> int:
    """How many rows the matrix has (the denominator of 'from all 4 sources')."""
    return len(result.sources) or len({c.source for c in result.cells})


def sources_of(cells: Sequence[CellResult]) -> list[str]:
    return list(dict.fromkeys(c.source for c in cells))


def outcomes(cells: Sequence[CellResult], key: Callable[[CellResult], str]) -> dict[str, list[str]]:
    """words -> the sources (or targets) that saw them, each once."""
    groups: dict[str, dict[str, None]] = {}
    for cell in cells:
        groups.setdefault(column_words(cell), {})[key(cell)] = None
    return {words: list(names) for words, names in groups.items()}
