"""The Jinja2 environment of the templated reports (HTML, Markdown)."""

from __future__ import annotations

from functools import lru_cache

import jinja2


@lru_cache(maxsize=2)
def environment(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("probe_engine.reports", "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
