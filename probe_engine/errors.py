"""The engine's exceptions. A network failure is never one of these: it is a cell's status.

ProbeEngineError
 ├── SpecError          bad input: the matrix file, an option (exit status 2)
 └── EngineError        a fault of the engine itself (exit status 3)
      └── ReportError   a report could not be written or read
"""

from __future__ import annotations


class ProbeEngineError(Exception):
    """Base of every error probe-engine raises on purpose."""


class SpecError(ProbeEngineError):
    """Bad input, with where it is: `FILE:LINE:COL: field: what is wrong`."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.field = field

    def __str__(self) -> str:
        where = self.file or "probe-engine"  # an option, not a file, was wrong
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class SpecErrors(SpecError):
    """Several independent problems in one file, each a SpecError, in file order."""

    def __init__(self, errors: list[SpecError]) -> None:
        first = errors[0]
        super().__init__(
            first.message, file=first.file, line=first.line, column=first.column, field=first.field
        )
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(SpecError.__str__(e) for e in self.errors)


class EngineError(ProbeEngineError):
    """The engine failed (not the network): a bug or a broken environment."""


class ReportError(EngineError):
    """A report could not be written, or a saved result could not be read back."""
