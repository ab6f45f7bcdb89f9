"""JSON Schemas: the matrix's for editors (yaml-language-server), report.json's for readers.

The matrix schema is pydantic's, made to accept what `validate` accepts: every value that may
come from a ${VARIABLE} also takes a ${...} string (its words are only known at load time), a
map of names takes no other key, every field has a description. What a schema cannot say
(names in expect: that match a source, duplicate keys, limits...) is listed in the README.
"""

from __future__ import annotations

from typing import Any

from .matrix import Matrix

DRAFT = "https://json-schema.org/draft/2020-12/schema"
VARIABLE = {
    "type": "string",
    "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}",
    "description": "From the environment when the matrix is loaded: ${NAME} or ${NAME:-default}.",
}
# Never from a variable: the kind picks the model (and the editor's completions); the
# version is a number, not text.
_LITERAL_ONLY = frozenset({"kind", "version"})

EXAMPLE = {
    "version": 1,
    "defaults": {"timeout": "2s"},
    "sources": {
        "here": {"kind": "local"},
        "shell-curl": {"kind": "shell", "tool": "curl"},
    },
    "targets": {
        "api": {"kind": "http", "url": "http://127.0.0.1:8000/health"},
        "db": {"kind": "tcp", "host": "127.0.0.1", "port": "${DB_PORT:-5432}"},
    },
    "expect": [{"source": "*", "target": "api", "status": "ok"}],
}


def matrix_schema() -> dict[str, Any]:
    """The matrix file's JSON Schema (draft 2020-12)."""
    schema = Matrix.model_json_schema()
    _walk(schema)
    return {**schema, "$schema": DRAFT, "title": "probe-engine matrix", "examples": [EXAMPLE]}


def report_schema() -> dict[str, Any]:
    """report.json's JSON Schema (draft 2020-12). Fields are only ever added: a reader
    should accept properties it does not know."""
    from ..results import MatrixResult

    schema = MatrixResult.model_json_schema(mode="serialization")
    return {**schema, "$schema": DRAFT, "title": "probe-engine report.json"}


def _walk(schema: dict[str, Any]) -> None:
    for definition in schema.get("$defs", {}).values():
        _object(definition)
    _object(schema)
    _close_name_maps(schema)


def _close_name_maps(schema: Any) -> None:
    """A map whose keys have a pattern (names, variables, headers) takes no other key."""
    if isinstance(schema, dict):
        if "patternProperties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _close_name_maps(value)
    elif isinstance(schema, list):
        for value in schema:
            _close_name_maps(value)


def _object(schema: dict[str, Any]) -> None:
    """One model's schema: its properties take variables, its name maps take only names."""
    for name, prop in schema.get("properties", {}).items():
        if "description" not in prop and name == "kind":
            prop["description"] = f"What this is: {prop.get('const')}. Decides the other keys."
        prop.pop("title", None)
        if name not in _LITERAL_ONLY:
            _allow_variables(prop)
    for nested in schema.get("patternProperties", {}).values():
        _allow_variables(nested)


def _allow_variables(schema: dict[str, Any]) -> None:
    """Where a value is a closed scalar (a number, a flag, an enum, a pattern), add the
    ${...} alternative; go into lists, maps and unions to find such values."""
    if "anyOf" in schema and "pattern" in schema:
        # A pattern beside `X | None` (a field's json_schema_extra) belongs to the text.
        pattern = schema.pop("pattern")
        for option in schema["anyOf"]:
            if option.get("type") == "string":
                option["pattern"] = pattern
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema.get("oneOf") or []
        if all(_is_closed_scalar(option) or option.get("type") == "null" for option in options):
            if any(_is_closed_scalar(option) for option in options):
                schema.setdefault("anyOf", options).append(VARIABLE)
            return
        for option in options:
            _allow_variables(option)
        return
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        items = schema["items"]
        if _is_closed_scalar(items):
            schema["items"] = {"anyOf": [items, VARIABLE]}
        else:
            _allow_variables(items)
        return
    if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        values = schema["additionalProperties"]
        if _is_closed_scalar(values):
            schema["additionalProperties"] = {"anyOf": [values, VARIABLE]}
        return
    if _is_closed_scalar(schema):
        closed = {k: schema.pop(k) for k in list(schema) if k not in _ANNOTATIONS}
        schema["anyOf"] = [closed, VARIABLE]


_ANNOTATIONS = frozenset({"description", "default", "examples", "title"})


def _is_closed_scalar(schema: dict[str, Any]) -> bool:
    """A scalar that not every string satisfies (so ${...} needs saying)."""
    if "$ref" in schema:
        return False
    if "anyOf" in schema:
        options = schema["anyOf"]
        return all(_is_closed_scalar(o) or o.get("type") == "null" for o in options)
    if "enum" in schema or "const" in schema or "pattern" in schema:
        return True
    return schema.get("type") in ("integer", "number", "boolean")
