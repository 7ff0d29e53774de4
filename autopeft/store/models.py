"""ORM models of the autopeft tables (SQLAlchemy 2 declarative).

The tables are prefixed ``autopeft_`` because Optuna's RDB storage may live in the same
database with its own ``studies``/``trials`` tables. The schema is created and upgraded by
the Alembic migrations in ``migrations/``, never by ``metadata.create_all``: a change here
needs a new migration revision.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from autopeft.status import STORED_TRIAL_STATUSES, StudyStatus

TABLE_PREFIX = "autopeft_"
VERSION_TABLE = "autopeft_alembic_version"

TRIAL_STATUSES: tuple[str, ...] = STORED_TRIAL_STATUSES
STUDY_STATUSES: tuple[str, ...] = tuple(s.value for s in StudyStatus)
# Why a study failed or was interrupted: a key of its settings (no column, no migration).
REASON_KEY = "status_reason"

# JSONB on PostgreSQL (indexable, compact); plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")

# Deterministic constraint names, so later migrations can drop or alter them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no timezone type and hands back naive datetimes; this stores UTC and
    re-attaches ``timezone.utc`` on the way out. Naive inputs are taken to be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        # SQLite would store the offset as text; keep its column naive-UTC instead.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def clean_json(value: Any) -> Any:
    """``value`` as plain JSON data: NaN/inf become None, numpy scalars become Python ones."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [clean_json(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and 0-d arrays
        return clean_json(value.tolist())
    raise TypeError(f"cannot store {type(value).__name__} as JSON: {value!r}")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StudyRow(Base):
    """One search: what was searched, under which budget and hardware, and its state."""

    __tablename__ = "autopeft_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    task: Mapped[str] = mapped_column(String(255), nullable=False)
    model: Mapped[str] = mapped_column(String(512), nullable=False)
    method_space_name: Mapped[str] = mapped_column(String(255), nullable=False)
    space: Mapped[dict] = mapped_column(JSONType, nullable=False)
    budget: Mapped[dict] = mapped_column(JSONType, nullable=False)
    hardware: Mapped[dict] = mapped_column(JSONType, nullable=False)
    settings: Mapped[dict] = mapped_column(JSONType, nullable=False)
    objectives: Mapped[list] = mapped_column(JSONType, nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False,
                                        default=StudyStatus.RUNNING.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    trials: Mapped[list[TrialRow]] = relationship(
        back_populates="study", cascade="all, delete-orphan", passive_deletes=True
    )

    def to_record(self) -> StudyRecord:
        return StudyRecord(
            id=self.id,
            name=self.name,
            task=self.task,
            model=self.model,
            space_name=self.method_space_name,
            space=self.space,
            budget=self.budget,
            hardware=self.hardware,
            settings=self.settings,
            objectives=tuple((str(n), str(d)) for n, d in self.objectives),
            status=self.status,
            created_at=self.created_at,
            finished_at=self.finished_at,
        )


class TrialRow(Base):
    """One trial of a study, whatever its outcome (failed and OOM trials are rows too)."""

    __tablename__ = "autopeft_trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number", name="uq_autopeft_trials_study_id_number"),
        Index("ix_autopeft_trials_study_id_status", "study_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("autopeft_studies.id", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    method: Mapped[str] = mapped_column(String(64), nullable=False)
    params: Mapped[dict] = mapped_column(JSONType, nullable=False)
    learning_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    primary_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics: Mapped[dict] = mapped_column(JSONType, nullable=False)
    trainable_params: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    total_params: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    memory_kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    train_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    eval_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    examples_per_second: Mapped[float | None] = mapped_column(Float, nullable=True)
    steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Dev predictions that could not be parsed into a label (generated text), of how many;
    # NULL: not recorded (trials that never evaluated, rows from before revision 0002).
    unparseable_predictions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    eval_examples: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    is_pareto: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    extra: Mapped[dict | None] = mapped_column(JSONType, nullable=True)

    study: Mapped[StudyRow] = relationship(back_populates="trials")

    def to_record(self, study_name: str) -> TrialRecord:
        return TrialRecord(
            study_name=study_name,
            **{name: getattr(self, name) for name in TrialRecord.column_names()},
        )


# -- plain records handed out by the Store (never ORM objects) ------------------------------


@dataclass(frozen=True)
class StudyRecord:
    """A study as stored. ``objectives`` is ``((name, direction), ...)``; the first one is
    the primary metric (stored per trial in ``primary_metric``)."""

    id: int
    name: str
    task: str
    model: str
    space_name: str
    space: dict
    budget: dict
    hardware: dict
    settings: dict
    objectives: tuple[tuple[str, str], ...]
    status: str
    created_at: datetime
    finished_at: datetime | None

    @property
    def method_space_name(self) -> str:
        """Alias of ``space_name`` (the column's name)."""
        return self.space_name

    @property
    def status_reason(self) -> str | None:
        """Why the study failed or was interrupted (None otherwise, and for older rows)."""
        return (self.settings or {}).get(REASON_KEY)

    @property
    def primary(self) -> str:
        """Name of the primary objective (e.g. ``accuracy``)."""
        return self.objectives[0][0]

    @property
    def primary_direction(self) -> str:
        return self.objectives[0][1]


@dataclass(frozen=True)
class StudySummary(StudyRecord):
    """A study with its trial counts, as listed by ``autopeft studies``."""

    n_trials: int = 0
    n_completed: int = 0
    best_primary: float | None = None


@dataclass(frozen=True)
class TrialRecord:
    """One stored trial. Memory is in bytes; times in seconds; datetimes tz-aware UTC.
    ``unparseable_predictions`` of ``eval_examples`` dev predictions did not parse as a
    label (always 0 for classification heads; None when not recorded)."""

    study_name: str
    id: int
    study_id: int
    number: int
    method: str
    params: dict
    learning_rate: float | None
    status: str
    reason: str | None
    primary_metric: float | None
    metrics: dict
    trainable_params: int | None
    total_params: int | None
    peak_memory_bytes: int | None
    memory_kind: str | None
    train_seconds: float | None
    eval_seconds: float | None
    examples_per_second: float | None
    steps: int | None
    unparseable_predictions: int | None
    eval_examples: int | None
    started_at: datetime | None
    finished_at: datetime | None
    is_pareto: bool
    extra: dict | None

    @classmethod
    def column_names(cls) -> list[str]:
        """The fields that are columns of ``autopeft_trials`` (all but ``study_name``)."""
        return [f.name for f in fields(cls) if f.name != "study_name"]

    @property
    def trainable_fraction(self) -> float | None:
        """trainable_params / total_params, or None when either is unknown."""
        if self.trainable_params is None or not self.total_params:
            return None
        return self.trainable_params / self.total_params
