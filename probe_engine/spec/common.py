"""Shared field types of the matrix: durations, ports, names, the base model."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

_DURATION = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_duration(value: Any) -> float:
    """500ms, 2s, 1.5m, 1h, or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 2s or 1m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(
                f"{value!r} is not a duration: use a number with ms, s, m or h (500ms, 2s, 1m)"
            )
        seconds = float(match.group("number")) * _UNITS[match.group("unit")]
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


def check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a valid name: use letters, digits, '.', '_' and '-'")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Port = Annotated[int, Field(ge=1, le=65535)]
Name = Annotated[str, AfterValidator(check_name)]
Family = Literal["any", "ipv4", "ipv6"]
HttpClient = Literal["requests", "httpx", "urllib", "curl"]


class SpecModel(BaseModel):
    """Every declared thing: unknown keys are errors, values never change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)
