"""YAML 1.2 core schema: what a plain (unquoted) scalar means, as Kubernetes reads it.

PyYAML follows YAML 1.1, where `no` is false, `22:22` is 1342 (base 60) and `2024-01-01` is a
date. Matrices are written by people who think in YAML 1.2, so plain scalars are resolved
here by the 1.2 core schema's rules: null, true/false, decimal, 0o octal and 0x hex integers,
floats (with .inf and .nan); anything else is text. Quoted scalars are always text.
"""

from __future__ import annotations

import re
import sys
from typing import Any

_INT = re.compile(r"[-+]?[0-9]+")
_OCTAL = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INFINITY = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)")
NULLS = frozenset({"", "~", "null", "Null", "NULL"})
TRUES = frozenset({"true", "True", "TRUE"})
FALSES = frozenset({"false", "False", "FALSE"})
# Only these first characters can start a non-text scalar: most values skip every regex.
NOT_TEXT_START = frozenset("0123456789+-.~nNtTfF")
# Python refuses to convert longer digit strings (CVE-2020-10735): such a "number" stays text.
_MAX_DIGITS = sys.get_int_max_str_digits() or 4300


def resolve_plain(text: str) -> Any:
    """The value of a plain scalar under the YAML 1.2 core schema."""
    if text and text[0] not in NOT_TEXT_START:
        return text
    if text.isdigit() and text.isascii() and len(text) < 19:
        return int(text)
    if text in NULLS:
        return None
    if text in TRUES:
        return True
    if text in FALSES:
        return False
    return _number(text, text)


def _number(text: str, fallback: Any) -> Any:
    if len(text) > _MAX_DIGITS:
        return fallback
    if _INT.fullmatch(text):
        return int(text, 10)
    if _OCTAL.fullmatch(text):
        return int(text[2:], 8)
    if _HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INFINITY.fullmatch(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.fullmatch(text):
        return float("nan")
    return fallback


_NOT_A = object()


def resolve_tagged(tag: str, text: str) -> tuple[bool, Any]:
    """A scalar with an explicit !!int, !!float, !!bool or !!null tag: (ok, value); the text
    itself when it is not one."""
    if tag == "int":
        value = _number(text, _NOT_A)
        return (True, value) if isinstance(value, int) else (False, text)
    if tag == "float":
        value = _number(text, _NOT_A)
        return (True, float(value)) if isinstance(value, (int, float)) else (False, text)
    if tag == "bool":
        if text in TRUES or text in FALSES:
            return True, text in TRUES
        return False, text
    return (True, None) if text in NULLS else (False, text)
