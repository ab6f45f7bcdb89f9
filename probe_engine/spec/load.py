"""From a file (or a dict) to a validated Matrix, every error naming FILE:LINE:COL and field."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import SpecError, SpecErrors
from .keypath import KeyPath
from .limits import MAX_DOCUMENT_BYTES, MAX_ERRORS
from .yamlfile import Document, check_size, load_document

if TYPE_CHECKING:
    from pydantic import ValidationError

    from .matrix import Matrix

# pydantic and the models are imported by validate_data, once a file has been read: a file
# refused while reading (not YAML, past a limit) is answered without them.


@dataclass(frozen=True)
class LoadedMatrix:
    matrix: Matrix
    path: str
    sha256: str


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


def _validation_errors(document: Document, exc: ValidationError) -> list[SpecError]:
    from .matrix import Matrix
    from .messages import message, model_at

    errors: list[SpecError] = []
    seen_paths: set[KeyPath] = set()
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = _field_path(document, loc)
        if error["type"] in ("union_tag_invalid",) and (*path, "kind") in document.positions:
            path = (*path, "kind")
        if path in seen_paths:
            continue  # one line per field: a union's other branches add only noise
        seen_paths.add(path)
        is_key = error["type"] == "extra_forbidden" or loc[-1:] == ("[key]",)
        model = model_at(Matrix, loc) if error["type"] == "extra_forbidden" else None
        errors.append(document.error(path, message(error, model), key=is_key))
    return errors


def _check_references(document: Document, data: dict[str, Any]) -> list[SpecError]:
    """Names in cells/exclude/expect must match a declared source or target. Checked on the
    raw data, so that these errors show beside every other one."""
    errors: list[SpecError] = []
    declared = {role: data.get(f"{role}s") for role in ("source", "target")}
    for section in ("cells", "exclude", "expect"):
        patterns = data.get(section)
        if not isinstance(patterns, list):
            continue
        for index, pattern in enumerate(patterns):
            if not isinstance(pattern, dict):
                continue
            for role, names in declared.items():
                value = pattern.get(role, "*")
                if not isinstance(value, str) or not isinstance(names, dict) or not names:
                    continue
                if not _pattern_matches(value, list(names)):
                    shown = ", ".join(list(names)[:20]) + (", ..." if len(names) > 20 else "")
                    errors.append(
                        document.error(
                            (section, index, role),
                            f"{value!r} matches no {role} (declared: {shown})",
                        )
                    )
    return errors


def _pattern_matches(pattern: str, names: list[str]) -> bool:
    # A row of a fanned-out source is "source/instance", a column "target:port" or
    # "target/via": the name before the separator decides here.
    declared = re.split(r"[:/]", pattern, maxsplit=1)[0]
    return any(
        fnmatch.fnmatchcase(name, declared) or fnmatch.fnmatchcase(name, pattern) for name in names
    )


def _covered(error: SpecError, replaced: list[str]) -> bool:
    """An error about a value the reader already reported (an unset variable left empty)."""
    field = error.field or ""
    return any(
        field == done or field.startswith((f"{done}.", f"{done}[")) for done in replaced if done
    )


def _raise_all(document: Document, errors: list[SpecError]) -> None:
    if not errors:
        return
    errors.sort(key=lambda e: (e.line or 0, e.column or 0))
    unique: list[SpecError] = []
    shown: set[str] = set()
    for found in errors:
        if str(found) not in shown:
            shown.add(str(found))
            unique.append(found)
    if len(unique) > MAX_ERRORS:
        hidden = len(unique) - MAX_ERRORS
        unique = [
            *unique[:MAX_ERRORS],
            SpecError(f"{hidden:,} more problems not shown", file=document.file),
        ]
    raise SpecErrors(unique)


def validate_data(document: Document) -> Matrix:
    """Every problem of the document at once (reading, values, references, size), in file
    order; the Matrix when there is none."""
    from pydantic import ValidationError

    from .cells import check_cell_count
    from .matrix import Matrix
    from .messages import describe

    errors = list(document.problems)
    data = document.data
    if not isinstance(data, dict):
        errors.append(
            document.error(
                (), f"expected a mapping with sources and targets, found {describe(data)}"
            )
        )
        _raise_all(document, errors)
    matrix: Matrix | None = None
    try:
        matrix = Matrix.model_validate(data)
    except ValidationError as exc:
        errors += [
            e for e in _validation_errors(document, exc) if not _covered(e, document.replaced)
        ]
    errors += _check_references(document, data)
    if matrix is not None:
        errors += check_cell_count(document, matrix)
    _raise_all(document, errors)
    assert matrix is not None
    return matrix


def load_matrix_text(
    text: str, file: str = "<matrix>", environ: Mapping[str, str] | None = None
) -> LoadedMatrix:
    data = check_size(text, file)
    document = load_document(text, file, os.environ if environ is None else environ)
    matrix = validate_data(document)
    return LoadedMatrix(matrix, file, hashlib.sha256(data).hexdigest())


def load_matrix(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> LoadedMatrix:
    """Read and validate a matrix file; raise SpecError naming FILE:LINE:COL: field."""
    file = os.fspath(path)
    if file == "-":
        return load_matrix_text(read_text(sys.stdin.buffer, STDIN), STDIN, environ)
    try:
        with open(file, "rb") as stream:
            text = read_text(stream, file)
    except FileNotFoundError:
        raise SpecError("no such file", file=file) from None
    except IsADirectoryError:
        raise SpecError("is a folder, not a matrix file", file=file) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", file=file) from None
    return load_matrix_text(text, file, environ)


STDIN = "<stdin>"


def read_text(stream: BinaryIO, file: str) -> str:
    """A matrix's bytes as text: at most MAX_DOCUMENT_BYTES, UTF-8 (a BOM is allowed)."""
    data = stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SpecError(
            f"the file is larger than the {MAX_DOCUMENT_BYTES:,} bytes a matrix may have",
            file=file,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be read (save the file as UTF-8)",
            file=file,
            line=line,
            column=column,
        ) from None


def load_matrix_dict(data: Mapping[str, Any], file: str = "<dict>") -> LoadedMatrix:
    """A matrix given as Python data (an Airflow DAG's dict): same validation, no positions."""
    document = Document(dict(data), file)
    matrix = validate_data(document)
    digest = hashlib.sha256(matrix.model_dump_json().encode()).hexdigest()
    return LoadedMatrix(matrix, file, digest)
