"""The bounds of a matrix: what keeps a hostile or mistaken file cheap to refuse.

Each is far above what a real matrix needs (the 5000-target file of bench/ is 250 KB, about
45,000 values, 5 levels deep) and low enough that refusing a file takes well under a second
and a few MB. The README's "Bad input" section lists them; keep the two in step.
"""

from __future__ import annotations

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
"""Largest matrix file (or stdin) read at all."""

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists (a matrix needs 6)."""

MAX_VALUES = 250_000
"""Values (mappings, lists, scalars) in a file, counting every alias as the values it
stands for: a "billion laughs" file of nested aliases is refused at the alias that would
cross it, before anything is copied."""

MAX_CELLS = 100_000
"""Cells of a run: sources x columns (a tcp target has one column per port, a
kubernetes-service target one per `via`), after `cells:` and `exclude:`."""

MAX_ERRORS = 200
"""Problems printed for one file; a last line says how many more there were."""
