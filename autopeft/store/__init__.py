"""autopeft's SQL storage: studies and trials in SQLite or PostgreSQL.

Names are re-exported lazily so that importing :mod:`autopeft.store` (e.g. for type hints)
does not pull in SQLAlchemy and Alembic until something is actually used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Store": "autopeft.store.store",
    "alembic_config": "autopeft.store.store",
    "StudyRecord": "autopeft.store.models",
    "StudySummary": "autopeft.store.models",
    "TrialRecord": "autopeft.store.models",
    "TRIAL_STATUSES": "autopeft.store.models",
    "STUDY_STATUSES": "autopeft.store.models",
    "VERSION_TABLE": "autopeft.store.models",
    "redact": "autopeft.store.url",
    "validate_url": "autopeft.store.url",
}

__all__ = [
    "STUDY_STATUSES",
    "TRIAL_STATUSES",
    "VERSION_TABLE",
    "Store",
    "StudyRecord",
    "StudySummary",
    "TrialRecord",
    "alembic_config",
    "redact",
    "validate_url",
]

if TYPE_CHECKING:
    from autopeft.store.models import (
        STUDY_STATUSES,
        TRIAL_STATUSES,
        VERSION_TABLE,
        StudyRecord,
        StudySummary,
        TrialRecord,
    )
    from autopeft.store.store import Store, alembic_config
    from autopeft.store.url import redact, validate_url


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'autopeft.store' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
