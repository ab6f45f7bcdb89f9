"""What Python 3.11 has built in, for the 3.9 and 3.10 interpreters the package also runs on
(an Airflow worker's Python is the one the `local` source probes from).

Annotations stay in the 3.10+ spelling (`X | None`): pydantic evaluates them on 3.9 through
the eval_type_backport package, and `type_hints` below does the same for the TypedDicts the
rules read.
"""

from __future__ import annotations

import sys
import types
import typing
from datetime import timezone
from typing import Any, Union

UTC = timezone.utc

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup, ExceptionGroup
else:  # anyio's own dependency there
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

# What typing.get_origin answers for `X | Y` (types.UnionType from 3.10 on) and Union[X, Y].
UNION_ORIGINS: tuple[Any, ...] = (Union, getattr(types, "UnionType", Union))


def is_typeddict(hint: Any) -> bool:
    """typing.is_typeddict (3.10+): a TypedDict class is a dict subclass that knows __total__."""
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__total__")


def type_hints(shape: type) -> dict[str, Any]:
    """typing.get_type_hints, also for `X | Y` and `list[X]` annotations on Python 3.9."""
    if sys.version_info >= (3, 10):
        return typing.get_type_hints(shape)
    from eval_type_backport import eval_type_backport

    namespace = vars(sys.modules[shape.__module__])
    return {
        name: eval_type_backport(
            typing.ForwardRef(hint) if isinstance(hint, str) else hint, namespace, None
        )
        for name, hint in shape.__annotations__.items()
    }


__all__ = [
    "UNION_ORIGINS",
    "UTC",
    "BaseExceptionGroup",
    "ExceptionGroup",
    "is_typeddict",
    "type_hints",
]
