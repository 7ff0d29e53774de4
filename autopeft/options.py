"""Field metadata shared by the settings dataclasses: the flag each field makes, its check.

A leaf module (no autopeft imports but errors), so that :mod:`autopeft.budget` and
:mod:`autopeft.settings` both build on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from autopeft.errors import AutopeftError


def option(*, positive: bool = False, choices: Sequence[str] | None = None,
           metavar: str | None = None, required: bool = False) -> dict[str, Any]:
    """Field metadata for the generated flag and its check."""
    return {"positive": positive, "choices": tuple(choices) if choices else None,
            "metavar": metavar, "required": required}


def flag_name(name: str) -> str:
    """The command-line flag of a field: ``max_steps`` -> ``--max-steps``."""
    return "--" + name.replace("_", "-")


def check_value(name: str, value: Any, meta: dict[str, Any]) -> None:
    """The one check of a field's value; AutopeftError naming the flag."""
    if value is None:
        return
    if meta.get("positive") and not value > 0:
        raise AutopeftError(f"{flag_name(name)} must be positive, got {value}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise AutopeftError(f"{flag_name(name)} must be one of {', '.join(choices)}, "
                            f"got {value!r}")


def check_fields(obj: Any) -> None:
    """Run :func:`check_value` on every field of a dataclass instance."""
    for f in fields(obj):
        check_value(f.name, getattr(obj, f.name), dict(f.metadata))
