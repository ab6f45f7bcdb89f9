"""Label and field selectors, parsed and matched as the apiserver does (or refused: 400)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .resources import JSON, Resource


class LabelSelectorError(ValueError):
    """A label or field selector the real apiserver would reject (400 BadRequest)."""


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: ``key op values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # "!=" and "notin" match objects that lack the key, as in Kubernetes
        return not present or value not in self.values


_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_RE_NOT = re.compile(rf"^!\s*(?P<key>{_KEY})$")
_RE_SET = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>.*)\)$")
_RE_EQ = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>.*)$")
_RE_EXISTS = re.compile(rf"^(?P<key>{_KEY})$")
_RE_VALUE = re.compile(rf"^{_VALUE}$")


def _split_terms(selector: str) -> list[str]:
    terms: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    terms.append("".join(current).strip())
    return [t for t in terms if t]


def _check_value(value: str, term: str) -> str:
    if len(value) > 63 or not _RE_VALUE.match(value):
        raise LabelSelectorError(f"unable to parse requirement: invalid label value: {value!r}")
    return value


def parse_label_selector(selector: str) -> list[Requirement]:
    """Parse ``a=b,c!=d,e in (x,y),f notin (z),g,!h`` as the apiserver does."""
    reqs: list[Requirement] = []
    for term in _split_terms(selector):
        if m := _RE_NOT.match(term):
            reqs.append(Requirement(m["key"], "!"))
        elif m := _RE_SET.match(term):
            values = tuple(_check_value(v.strip(), term) for v in m["values"].split(","))
            reqs.append(Requirement(m["key"], m["op"], values))
        elif m := _RE_EQ.match(term):
            op = "=" if m["op"] == "==" else m["op"]
            reqs.append(Requirement(m["key"], op, (_check_value(m["value"].strip(), term),)))
        elif m := _RE_EXISTS.match(term):
            reqs.append(Requirement(m["key"], "exists"))
        else:
            raise LabelSelectorError(f"unable to parse requirement: found '{term}', expected: key")
    return reqs


def match_labels(selector: str | Sequence[Requirement], labels: Mapping[str, str] | None) -> bool:
    """True when ``labels`` satisfy the selector (a string or parsed requirements)."""
    reqs = parse_label_selector(selector) if isinstance(selector, str) else selector
    return all(r.matches(labels or {}) for r in reqs)


def parse_field_selector(selector: str, resource: Resource) -> list[tuple[str, str, str]]:
    terms: list[tuple[str, str, str]] = []
    allowed = {"metadata.name", "metadata.namespace", *resource.fields}
    for term in _split_terms(selector):
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", term)
        if not m:
            raise LabelSelectorError(f"invalid selector: '{selector}'; can't understand '{term}'")
        key, op, value = m.group(1), m.group(2), m.group(3).strip()
        if key not in allowed:
            raise LabelSelectorError(
                f'field label "{key}" not supported for {resource.kind.lower()}s'
                if resource.kind != "Endpoints"
                else f'field label "{key}" not supported for endpoints'
            )
        terms.append((key, "!=" if op == "!=" else "=", value))
    return terms


def _field_value(obj: JSON, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def match_fields(obj: JSON, terms: Sequence[tuple[str, str, str]]) -> bool:
    for key, op, value in terms:
        actual = _field_value(obj, key)
        if (actual == value) != (op == "="):
            return False
    return True
