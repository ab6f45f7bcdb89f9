"""pydantic's validation errors in the matrix's words, with "did you mean" where it helps."""

from __future__ import annotations

import difflib
import re
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from ..compat import UNION_ORIGINS

# Words users bring from other tools (Compose, Kubernetes, requests): what we call them.
_SYNONYMS = {
    "environment": "env",
    "environ": "env",
    "variables": "env",
    "hostname": "host",
    "address": "host",
    "addr": "host",
    "ip": "host",
    "uri": "url",
    "link": "url",
    "type": "kind",
    "labels": "selector",
    "label_selector": "selector",
    "ns": "namespace",
    "expected_status": "expect_status",
    "status_code": "expect_status",
    "status_codes": "expect_status",
    "verify": "verify_tls",
    "ssl_verify": "verify_tls",
    "timeout_s": "timeout",
    "port_range": "ports",
    "client": "http_client",
    "image": "container",
}
_RANGE = re.compile(r"\s*[0-9]+\s*-\s*[0-9]+\s*")


def did_you_mean(word: str, choices: list[str]) -> str | None:
    """The closest choice to a mistyped word (or to a synonym of it), if one is close."""
    candidates = {choice: choice for choice in choices}
    for synonym, meant in _SYNONYMS.items():
        if meant in candidates:
            candidates.setdefault(synonym, meant)
    found = difflib.get_close_matches(word.lower(), list(candidates), n=1, cutoff=0.6)
    return candidates[found[0]] if found else None


def describe(value: Any) -> str:
    """A value as the message shows it: numbers and flags by their YAML spelling."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def message(error: ErrorDetails, model: type[BaseModel] | None) -> str:
    """One error's words; `model` is the model that rejected a key (for extra_forbidden)."""
    kind = error["type"]
    context = error.get("ctx") or {}
    value = error.get("input")
    loc = error["loc"]
    field = loc[-1] if loc else None
    if kind == "extra_forbidden":
        allowed = sorted(model.model_fields) if model is not None else []
        guess = did_you_mean(str(field), allowed)
        if guess:
            return f"unknown key: did you mean {guess!r}?"
        return f"unknown key (allowed here: {', '.join(allowed)})" if allowed else "unknown key"
    if kind == "union_tag_invalid":
        tags = re.findall(r"'([^']*)'", str(context.get("expected_tags", "")))
        guess = did_you_mean(str(context.get("tag")), tags)
        hint = f": did you mean {guess!r}?" if guess else ""
        return f"unknown kind {context.get('tag')!r}{hint} (expected one of: {', '.join(tags)})"
    if kind == "union_tag_not_found":
        tags = re.findall(r"'([^']*)'", str(context.get("expected_tags", "")))
        return f"missing 'kind' (one of: {', '.join(tags)})" if tags else "missing 'kind'"
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        expected_text = str(context.get("expected", "")).replace("'", "")
        expected = re.findall(r"'([^']*)'", str(context.get("expected", "")))
        guess = did_you_mean(value, expected) if isinstance(value, str) else None
        if guess:
            return f"{describe(value)}: did you mean {guess!r}? (one of: {expected_text})"
        return f"{describe(value)} is not one of: {expected_text}"
    if kind == "less_than_equal":
        return f"{describe(value)} is too large (at most {context.get('le')})"
    if kind == "greater_than_equal":
        return f"{describe(value)} is too small (at least {context.get('ge')})"
    if kind == "too_short":
        return "declare at least one"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{describe(value)} is not a whole number"
    if kind in ("float_type", "float_parsing"):
        return f"{describe(value)} is not a number"
    if kind == "bool_type":
        return f"{describe(value)} is not true or false"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping, found {describe(value)}"
    if kind == "list_type":
        return _expected_list(field, value)
    if kind == "string_type":
        return _expected_text(value)
    text = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    return text


def _expected_list(field: Any, value: Any) -> str:
    if field == "ports" and isinstance(value, str) and _RANGE.fullmatch(value):
        return f'expected a list: write ports: ["{value.replace(" ", "")}"] (a range is quoted)'
    if field == "ports" and isinstance(value, int) and not isinstance(value, bool):
        return f"expected a list: write ports: [{value}], or port: {value}"
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return f"expected a list, found {describe(value)}: write [{value}]"
    return f"expected a list, found {describe(value)}"


def _expected_text(value: Any) -> str:
    if isinstance(value, bool) or (isinstance(value, (int, float)) and value is not None):
        return f'expected text, found {describe(value)}: write it in quotes ("...") if it is text'
    return f"expected text, found {describe(value)}"


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that holds the last key of `loc` (pydantic's loc, union tags included)."""
    current: Any = root
    for part in loc[:-1]:
        current = _step(current, part)
        if current is None:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Annotated[X, ...] -> X; X | None -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in UNION_ORIGINS:
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _step(current: Any, part: Any) -> Any:
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        field = current.model_fields.get(str(part))
        return field.annotation if field is not None else None
    origin = typing.get_origin(current)
    if origin is dict:
        return typing.get_args(current)[1]
    if origin is list:
        return typing.get_args(current)[0]
    if origin in UNION_ORIGINS:
        for option in typing.get_args(current):
            member = _unwrap(option)
            if not (isinstance(member, type) and issubclass(member, BaseModel)):
                continue
            kind = member.model_fields.get("kind")
            if kind is not None and part in typing.get_args(kind.annotation):
                return member
        return None
    return None
