"""From a file (or a dict) to a validated Matrix, every error naming FILE:LINE:COL and field."""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import SpecError, SpecErrors
from .matrix import Matrix
from .yamlfile import Document, KeyPath, load_document


@dataclass(frozen=True)
class LoadedMatrix:
    matrix: Matrix
    path: str
    sha256: str


def _message(error: ErrorDetails) -> str:
    """pydantic's wording, made to speak about the matrix file."""
    kind = error["type"]
    context = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "union_tag_invalid":
        expected = str(context.get("expected_tags", "")).replace("'", "")
        return f"unknown kind {context.get('tag')!r} (expected one of: {expected})"
    if kind == "union_tag_not_found":
        return "missing 'kind'"
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        expected = str(context.get("expected", "")).replace("'", "")
        return f"{value!r} is not one of: {expected}"
    if kind == "less_than_equal":
        return f"{value!r} is too large (at most {context.get('le')})"
    if kind == "greater_than_equal":
        return f"{value!r} is too small (at least {context.get('ge')})"
    if kind == "too_short":
        return "declare at least one"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{value!r} is not a whole number"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a mapping"
    if kind == "list_type":
        return "expected a list"
    if kind == "string_type":
        return "expected text"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _field_path(document: Document, loc: tuple[Any, ...]) -> KeyPath:
    """Drop pydantic's union tags from loc, keeping only keys that exist in the document."""
    path: KeyPath = ()
    for part in loc:
        candidate = (*path, part)
        if candidate in document.positions or candidate in document.key_positions:
            path = candidate
        elif isinstance(part, str) and "[" in part:
            continue  # function-after[...], tagged-union[...]
        elif _is_tag(document, path, part):
            continue
        else:
            path = candidate  # a missing key: name it, at its parent's position
    return path


def _is_tag(document: Document, path: KeyPath, part: Any) -> bool:
    node = _value_at(document.data, path)
    return isinstance(node, dict) and node.get("kind") == part


def _value_at(data: Any, path: KeyPath) -> Any:
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _validation_errors(document: Document, exc: ValidationError) -> SpecErrors:
    errors: list[SpecError] = []
    seen_paths: set[KeyPath] = set()
    for error in exc.errors():
        path = _field_path(document, tuple(error["loc"]))
        if error["type"] in ("union_tag_invalid",) and (*path, "kind") in document.positions:
            path = (*path, "kind")
        if path in seen_paths:
            continue  # one line per field: a union's other branches add only noise
        seen_paths.add(path)
        is_key = error["type"] == "extra_forbidden"
        errors.append(document.error(path, _message(error), key=is_key))
    errors.sort(key=lambda e: (e.line or 0, e.column or 0))
    unique: list[SpecError] = []
    for found in errors:
        if all(str(found) != str(kept) for kept in unique):
            unique.append(found)
    return SpecErrors(unique)


def _check_references(document: Document, matrix: Matrix) -> None:
    """Names in cells/exclude/expect must match a declared source or target."""
    errors: list[SpecError] = []
    sources, targets = list(matrix.sources), list(matrix.targets)
    sections: list[tuple[str, list[Any]]] = [
        ("cells", list(matrix.cells or [])),
        ("exclude", list(matrix.exclude)),
        ("expect", list(matrix.expect)),
    ]
    for section, patterns in sections:
        for index, pattern in enumerate(patterns):
            for role, names in (("source", sources), ("target", targets)):
                value = getattr(pattern, role)
                if not _pattern_matches(value, names):
                    errors.append(
                        document.error(
                            (section, index, role),
                            f"{value!r} matches no {role} (declared: {', '.join(names)})",
                        )
                    )
    if errors:
        raise SpecErrors(errors)


def _pattern_matches(pattern: str, names: list[str]) -> bool:
    # A row of a fanned-out source is named "source/instance": the source name decides here.
    return any(
        fnmatch.fnmatchcase(name, pattern.split("/", 1)[0]) or fnmatch.fnmatchcase(name, pattern)
        for name in names
    )


def validate_data(document: Document) -> Matrix:
    if not isinstance(document.data, dict):
        raise document.error(
            (), f"expected a mapping with sources and targets, found {type(document.data).__name__}"
        )
    try:
        matrix = Matrix.model_validate(document.data)
    except ValidationError as exc:
        raise _validation_errors(document, exc) from None
    _check_references(document, matrix)
    return matrix


def load_matrix_text(
    text: str, file: str = "<matrix>", environ: Mapping[str, str] | None = None
) -> LoadedMatrix:
    document = load_document(text, file, os.environ if environ is None else environ)
    matrix = validate_data(document)
    return LoadedMatrix(matrix, file, hashlib.sha256(text.encode()).hexdigest())


def load_matrix(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> LoadedMatrix:
    """Read and validate a matrix file; raise SpecError naming FILE:LINE:COL: field."""
    file = os.fspath(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such file", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {exc}", file=file) from None
    return load_matrix_text(text, file, environ)


def load_matrix_dict(data: Mapping[str, Any], file: str = "<dict>") -> LoadedMatrix:
    """A matrix given as Python data (an Airflow DAG's dict): same validation, no positions."""
    document = Document(dict(data), file)
    matrix = validate_data(document)
    digest = hashlib.sha256(matrix.model_dump_json().encode()).hexdigest()
    return LoadedMatrix(matrix, file, digest)
