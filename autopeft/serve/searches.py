"""A search request: the JSON body of ``POST /v1/searches`` as ``autopeft search`` arguments.

The body takes the same fields as the command line (``max_steps`` for ``--max-steps``, the
budget's fields flat beside the others). Its pydantic model is generated from the
:class:`~autopeft.settings.SearchSettings` and :class:`~autopeft.budget.Budget` dataclasses,
so OpenAPI documents every field with its help text; the values are then turned into
``autopeft search`` arguments and checked by :meth:`SearchSettings.from_argv`, the very
parser the CLI uses, so the server and the command line accept and refuse the same input.
"""

from __future__ import annotations

import re
import typing
from dataclasses import MISSING, dataclass, fields
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from autopeft.budget import Budget
from autopeft.errors import AutopeftError
from autopeft.options import flag_name
from autopeft.settings import SearchSettings, field_docs

# The server decides these: searches write to the store it serves, and run where it says.
SERVER_OWNED = ("storage", "ray_address")
_FLAG = re.compile(r"--([a-z][a-z0-9-]*)")


class FieldError(AutopeftError):
    """A request field the settings refused; ``field`` names it (None: the body as a whole)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SearchRequest:
    """A checked search request: the settings, and the arguments that reproduce them."""

    settings: SearchSettings
    argv: list[str]

    @property
    def study(self) -> str:
        return self.settings.study or ""


def _settings_fields() -> list[tuple[type, Any]]:
    out: list[tuple[type, Any]] = []
    for f in fields(SearchSettings):
        if f.name == "budget":
            out += [(Budget, b) for b in fields(Budget)]
        elif f.name not in SERVER_OWNED:
            out.append((SearchSettings, f))
    return out


@cache
def body_model() -> type[BaseModel]:
    """The pydantic model of the request body (unknown fields are refused)."""
    spec: dict[str, Any] = {}
    for owner, f in _settings_fields():
        hint = typing.get_type_hints(owner)[f.name]
        doc = field_docs(owner).get(f.name)
        if f.metadata.get("required"):
            spec[f.name] = (hint, Field(..., description=doc))
        else:
            default = f.default if f.default is not MISSING else None
            spec[f.name] = (hint | None, Field(None, description=doc,
                                                examples=[default] if default else None))
    return create_model("SearchBody", __config__=ConfigDict(extra="forbid"), **spec)


def bool_fields() -> set[str]:
    hints = {**typing.get_type_hints(SearchSettings), **typing.get_type_hints(Budget)}
    return {name for name, hint in hints.items() if hint is bool}


def to_argv(values: dict[str, Any]) -> list[str]:
    """``autopeft search`` arguments for the given (non-None) field values."""
    flags = bool_fields()
    argv: list[str] = []
    for name, value in values.items():
        if value is None:
            continue
        if name in flags:
            if value:
                argv.append(flag_name(name))
            continue
        argv.append(f"{flag_name(name)}={value}")  # "=": a value may start with "-"
    return argv


def field_of(message: str) -> str | None:
    """The field a settings error names (its first ``--flag``), or None."""
    if message.startswith("bad study name"):
        return "study"
    match = _FLAG.search(message)
    return match.group(1).replace("-", "_") if match else None


def parse_request(values: dict[str, Any], default_study: typing.Callable[[str, str], str]
                  ) -> SearchRequest:
    """Check a request's values with the CLI's parser; a study name is made up if missing.

    Args:
        values: The body's fields (pydantic-validated), None for fields not given.
        default_study: ``(task, model) -> name`` for a request without ``study``.

    Raises:
        FieldError: the settings refuse a value (the message names the field).
    """
    values = {k: v for k, v in values.items() if v is not None}
    for name in SERVER_OWNED:
        if name in values:
            raise FieldError(name, f"{name} is set by the server, not by a search request")
    if ("study" not in values and not values.get("resume") and values.get("task")
            and values.get("model")):
        values["study"] = default_study(str(values["task"]), str(values["model"]))
    argv = to_argv(values)
    try:
        settings = SearchSettings.from_argv(argv)
    except AutopeftError as exc:
        message = str(exc).removeprefix("bad search arguments: ")
        raise FieldError(field_of(message), message) from None
    _check_task_and_space(settings)
    return SearchRequest(settings=settings, argv=argv)


def _check_task_and_space(settings: SearchSettings) -> None:
    """What ``run_search`` checks first, here, so that a typo is a 422 and not a search that
    starts and dies."""
    from autopeft.space import load_space
    from autopeft.tasks.registry import get_task

    for name, check in (("task", get_task), ("space", load_space)):
        try:
            check(getattr(settings, name))
        except AutopeftError as exc:
            raise FieldError(name, str(exc)) from None
