"""Field metadata shared by the settings dataclasses: the flag each field makes, its check.

A leaf module (no autopeft imports but errors), so that :mod:`autopeft.budget` and
:mod:`autopeft.settings` both build on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from autopeft.errors import AutopeftError, excerpt


def option(*, positive: bool = False, choices: Sequence[str] | None = None,
           metavar: str | None = None, required: bool = False,
           bounds: tuple[int, int] | None = None, result: bool = False) -> dict[str, Any]:
    """Field metadata for the generated flag and its check.

    Args:
        positive: The value must be > 0.
        choices: The allowed values.
        metavar: The flag's placeholder in ``--help``.
        required: The flag must be given.
        bounds: Inclusive (low, high) the value must lie in.
        result: The setting changes what a trial measures (its metric, parameters or peak
            memory), so a study's trials are only comparable at one value of it: continuing
            a study with another value is refused (:func:`result_settings`).
    """
    return {"positive": positive, "choices": tuple(choices) if choices else None,
            "metavar": metavar, "required": required, "bounds": bounds, "result": result}


def flag_name(name: str) -> str:
    """The command-line flag of a field: ``max_steps`` -> ``--max-steps``."""
    return "--" + name.replace("_", "-")


def check_value(name: str, value: Any, meta: dict[str, Any]) -> None:
    """The one check of a field's value; AutopeftError naming the flag."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise AutopeftError(f"{flag_name(name)} must be a finite number, got {value}")
    bounds = meta.get("bounds")
    if bounds and not bounds[0] <= value <= bounds[1]:
        raise AutopeftError(f"{flag_name(name)} must be between {bounds[0]} and {bounds[1]}, "
                            f"got {value}")
    if meta.get("positive") and not value > 0:
        raise AutopeftError(f"{flag_name(name)} must be positive, got {value}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise AutopeftError(f"{flag_name(name)} must be one of {', '.join(choices)}, "
                            f"got {excerpt(value)}")


def check_fields(obj: Any) -> None:
    """Run :func:`check_value` on every field of a dataclass instance."""
    for f in fields(obj):
        check_value(f.name, getattr(obj, f.name), dict(f.metadata))


def result_fields(obj: Any) -> dict[str, Any]:
    """The values of ``obj``'s fields marked ``result=True``, by field name."""
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.metadata.get("result")}
