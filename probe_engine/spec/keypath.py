"""Where a value sits in a matrix file: its key path, its line and column, and the path as a
message shows it."""

from __future__ import annotations

import json
import re
from typing import NamedTuple, Union

from yaml.error import Mark

KeyPath = tuple[Union[str, int], ...]


class Position(NamedTuple):
    line: int  # 1-based, as editors count
    column: int


def position_of(mark: Mark) -> Position:
    return Position(mark.line + 1, mark.column + 1)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.*-]*")


def dotted(path: KeyPath) -> str:
    """sources.here.env, targets["a b"].port, expect[0]: a key that is not a plain name is
    shown quoted, so that a message stays one line whatever the file holds."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text
