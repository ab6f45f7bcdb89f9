"""Shared field types of the matrix: durations, ports, hosts, names, flags, the base model.

Values are strict: a number where text belongs, `yes` where true/false belongs, a URL where a
host belongs, are errors that say what to write instead. Text that came from a ${VARIABLE}
(or was quoted) is accepted wherever its words are valid: "8080" as a port, "true" as a flag,
"2s" as a duration. Each type carries the JSON Schema that says exactly that (schema.py).
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .scalars import FALSES, TRUES

# -- durations ------------------------------------------------------------------------------

_NUMBER = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
# 1h30m, 2m, 1.5s, 500ms, 1m30s250ms: units from hours down, each at most once.
_COMPOUND = re.compile(
    rf"(?:(?P<h>{_NUMBER})h)?(?:(?P<m>{_NUMBER})m(?!s))?(?:(?P<s>{_NUMBER})s)?"
    rf"(?:(?P<ms>{_NUMBER})ms)?"
)
_BARE = re.compile(_NUMBER)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# The same grammar for JSON Schema (ECMA 262 has no named groups).
_SCHEMA_COMPOUND = "".join(
    f"(?:{_NUMBER}{unit}{'(?!s)' if unit == 'm' else ''})?" for unit in ("h", "m", "s", "ms")
)
DURATION_PATTERN = rf"^(?=.*[1-9])(?:{_NUMBER}|{_SCHEMA_COMPOUND})$"
DURATION_HINT = "use ms, s, m or h (500ms, 2s, 1m30s, 1h) or a number of seconds"


def parse_duration(value: Any) -> float:
    """500ms, 2s, 1m30s, 1h, 1.5m, or a number of seconds (also as text: "2")."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not a duration: {DURATION_HINT}")
    seconds = _duration_text(value) if isinstance(value, str) else float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{value!r} is not a duration: give a finite number of seconds")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


def _duration_text(text: str) -> float:
    if _BARE.fullmatch(text):
        return float(text)
    match = _COMPOUND.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration: {DURATION_HINT}")
    return sum(
        float(part) * _UNIT_SECONDS[unit] for unit, part in match.groupdict().items() if part
    )


# -- numbers and flags ----------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]{1,18}")


def whole_number(value: Any) -> Any:
    """An int as written, or digits as text (a quoted or ${VARIABLE} port)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, str):
        if _DIGITS.fullmatch(value):
            return int(value)
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, float):
        if value.is_integer():  # 8080.0: JSON Schema's integer, so ours too
            return int(value)
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _flag(value: Any) -> Any:
    """true or false (YAML 1.2: yes/no/on/off are text, not flags)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and (value in TRUES or value in FALSES):
        return value in TRUES
    raise ValueError(f"{value!r} is not true or false")


# 1..65535 as text, leading zeros allowed as int() allows them.
PORT_TEXT = (
    r"0*(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)


def whole_number_schema(minimum: int, maximum: int | None = None) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        number["maximum"] = maximum
    text: dict[str, Any] = {"type": "string", "pattern": r"^[0-9]{1,18}$"}
    if (minimum, maximum) == (1, 65535):
        text["pattern"] = f"^{PORT_TEXT}$"
    return {"anyOf": [number, text]}


_WHOLE = BeforeValidator(whole_number)

# Whole numbers: an int, or its digits as text (a quoted or ${VARIABLE} value).
Port = Annotated[int, _WHOLE, Field(ge=1, le=65535), WithJsonSchema(whole_number_schema(1, 65535))]
HttpStatus = Annotated[
    int, _WHOLE, Field(ge=100, le=599), WithJsonSchema(whole_number_schema(100, 599))
]
Concurrency = Annotated[
    int, _WHOLE, Field(ge=1, le=100_000), WithJsonSchema(whole_number_schema(1, 100_000))
]
Ndots = Annotated[int, _WHOLE, Field(ge=0, le=15), WithJsonSchema(whole_number_schema(0, 15))]
PositiveCount = Annotated[int, _WHOLE, Field(ge=1), WithJsonSchema(whole_number_schema(1))]
EchoCount = Annotated[int, _WHOLE, Field(ge=1, le=100), WithJsonSchema(whole_number_schema(1, 100))]
Flag = Annotated[
    bool,
    BeforeValidator(_flag),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"enum": sorted(TRUES | FALSES)}]}),
]
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": DURATION_PATTERN},
            ],
            "examples": ["500ms", "2s", "1m30s", 5],
        }
    ),
]

# -- names and hosts ------------------------------------------------------------------------

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_NAME = re.compile(NAME_PATTERN)


def check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a valid name: use letters, digits, '.', '_' and '-'")
    return value


_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
DNS_NAME_PATTERN = rf"^(?=.{{1,253}}\.?$){_LABEL}(?:\.{_LABEL})*\.?$"
_DNS_NAME = re.compile(DNS_NAME_PATTERN)
IPV4_PATTERN = r"^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$"  # noqa: E501
# Hex groups and colons, an optional dotted IPv4 tail, an optional zone: the exact check is
# Python's ipaddress; the schema pattern is the shape.
IPV6_PATTERN = (
    r"^[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3})?(?:%[A-Za-z0-9_.-]+)?$"
)


def check_host(value: str) -> str:
    """A DNS name or an IP address literal, as getaddrinfo takes it; a URL or a host:port is
    refused with what to write instead."""
    if "://" in value:
        raise ValueError(f"{value!r} is a URL: write the address alone, or use kind: http")
    if not value or value != value.strip() or any(c.isspace() for c in value):
        raise ValueError(f"{value!r}: a host has no spaces")
    if value.startswith("[") and value.endswith("]"):
        raise ValueError(f"{value!r}: write the IPv6 address without brackets: {value[1:-1]}")
    if _is_ip(value):
        return value
    host, colon, port = value.rpartition(":")
    if colon and port.isdigit() and host and ":" not in host:
        raise ValueError(f"{value!r}: give the port in `port:`, the host alone in `host:`")
    if _DNS_NAME.match(value) and not _looks_like_ipv4(value):
        return value
    raise ValueError(
        f"{value!r} is not a host: give a DNS name (letters, digits, '-', '.') or an IP address"
    )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _looks_like_ipv4(value: str) -> bool:
    """1.2.3.300 or 10.0.0: all digits and dots but not an address (getaddrinfo would guess)."""
    return all(part.isdigit() for part in value.rstrip(".").split("."))


Name = Annotated[
    str,
    AfterValidator(check_name),
    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN}),
]
Host = Annotated[
    str,
    AfterValidator(check_host),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DNS_NAME_PATTERN, "not": {"pattern": r"^[0-9.]+$"}},
                {"type": "string", "pattern": IPV4_PATTERN},
                {"type": "string", "pattern": IPV6_PATTERN},
            ],
            "examples": ["127.0.0.1", "api.example.com", "::1"],
        }
    ),
]
# -- headers and environments --------------------------------------------------------------

HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)
# Any character but controls (tab allowed): a newline would start a header of its own.
HEADER_VALUE_PATTERN = "^[^\\x00-\\x08\\x0a-\\x1f\\x7f]*$"
_HEADER_VALUE = re.compile("[^\x00-\x08\x0a-\x1f\x7f]*")
ENV_NAME_PATTERN = "^[^=\\x00]+$"


def _header_name(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a header name (letters, digits and -, no spaces)")
    return value


def _header_value(value: str) -> str:
    if not _HEADER_VALUE.fullmatch(value):
        raise ValueError(f"{value!r}: a header value holds no line breaks or control characters")
    return value


def _env_name(value: str) -> str:
    if not value or "=" in value or "\x00" in value:
        raise ValueError(f"{value!r} is not an environment variable name (no '=')")
    return value


def _env_value(value: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{value!r}: an environment value cannot hold a NUL character")
    return value


Headers = dict[
    Annotated[
        str,
        AfterValidator(_header_name),
        WithJsonSchema({"type": "string", "pattern": HEADER_NAME_PATTERN}),
    ],
    Annotated[
        str,
        AfterValidator(_header_value),
        WithJsonSchema({"type": "string", "pattern": HEADER_VALUE_PATTERN}),
    ],
]
EnvVars = dict[
    Annotated[
        str,
        AfterValidator(_env_name),
        WithJsonSchema({"type": "string", "pattern": ENV_NAME_PATTERN}),
    ],
    Annotated[str, AfterValidator(_env_value)],
]
Family = Literal["any", "ipv4", "ipv6"]
HttpClient = Literal["requests", "httpx", "urllib", "curl"]


def exactly_one_of(first: str, second: str) -> dict[str, Any]:
    """JSON Schema for "give exactly one of `first` or `second`" (a null counts as not given,
    as it does for the model)."""

    def given(name: str) -> dict[str, Any]:
        return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}

    return {"oneOf": [given(first), given(second)]}


class SpecModel(BaseModel):
    """Every declared thing: unknown keys are errors, values are strict (no silent
    conversion of 8080 to "8080" or of "yes" to true), values never change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# Linux interface names: 1 to 15 bytes, no '/', ':' or whitespace (dev_valid_name).
INTERFACE_PATTERN = r"^[^/:\s]{1,15}$"
_INTERFACE = re.compile(INTERFACE_PATTERN)


class BindSpec(SpecModel):
    """A chosen source for a probe's socket: an address of the place, or one of its
    interfaces (as `ping -I`, `curl --interface`)."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("address", "interface"))

    address: str | None = Field(
        None,
        description="Bind the socket to this address of the place (EADDRNOTAVAIL if absent).",
        json_schema_extra={"anyOf": [{"pattern": IPV4_PATTERN}, {"pattern": IPV6_PATTERN}]},
        examples=["10.0.0.5"],
    )
    interface: str | None = Field(
        None,
        description="Send through this interface only (SO_BINDTODEVICE; needs root there).",
        json_schema_extra={"pattern": INTERFACE_PATTERN},
        examples=["eth1"],
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                return str(ipaddress.ip_address(value))
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address") from None
        return value

    @field_validator("interface")
    @classmethod
    def _interface(cls, value: str | None) -> str | None:
        if value is not None and not _INTERFACE.match(value):
            raise ValueError(
                f"{value!r} is not an interface name (1 to 15 characters, no '/', ':' or spaces)"
            )
        return value

    @model_validator(mode="after")
    def _one_of(self) -> BindSpec:
        if (self.address is None) == (self.interface is None):
            raise ValueError("give either address or interface")
        return self

    def plan(self) -> dict[str, str]:
        """What the agent's socket is bound to, as the plan carries it."""
        if self.interface is not None:
            return {"interface": self.interface}
        return {"address": str(self.address)}
