"""The Store: every read and write of autopeft's own tables, one transaction each.

Search and trial code call these methods and get frozen dataclasses back; they never see a
session or an ORM object. ``Store(url)`` brings the schema to the newest Alembic revision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from alembic import command
from alembic.config import Config
from sqlalchemy import case, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from autopeft.errors import AutopeftError
from autopeft.pareto import canonical_direction
from autopeft.status import StudyStatus, TrialStatus, controller_alive
from autopeft.store.models import (
    REASON_KEY,
    STUDY_STATUSES,
    TRIAL_STATUSES,
    StudyRecord,
    StudyRow,
    StudySummary,
    TrialRecord,
    TrialRow,
    clean_json,
    utcnow,
)
from autopeft.store.url import (
    WRITE,
    connection_error,
    open_engine,
    parse,
    redact,
    require_existing,
    short_reason,
    validate_url,
)

if TYPE_CHECKING:
    from autopeft.store.query import Objective

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x6175746F70656674  # "autopeft": serialises concurrent migrations on PostgreSQL


def alembic_config(connection: Any = None) -> Config:
    """An Alembic config for the packaged migrations, independent of the working directory.

    Args:
        connection: An open SQLAlchemy connection for ``env.py`` to migrate, or None.
    """
    cfg = Config()
    # configparser interpolates '%': escape it in case the install path contains one.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _objectives(objectives: Iterable[Iterable[str]]) -> list[list[str]]:
    out: list[list[str]] = []
    for item in objectives:
        name, direction = item
        try:
            out.append([str(name), canonical_direction(direction)])
        except ValueError:
            raise AutopeftError(
                f"objective {name!r}: direction must be maximize or minimize"
            ) from None
    names = [n for n, _ in out]
    if not out or len(set(names)) != len(names):
        raise AutopeftError(f"objectives must be a non-empty list of distinct names: {names}")
    return out


class Store:
    """autopeft's studies and trials in a SQL database (SQLite or PostgreSQL).

    Args:
        url: A SQLAlchemy URL; None means :func:`autopeft.paths.default_storage_url`.
        echo: Log every SQL statement (debugging).
        create: Create a SQLite file (and its folder) that does not exist yet. Commands that
            only read pass False: they never leave an empty database behind.

    Raises:
        AutopeftError: malformed URL, missing driver, unreachable server, a database
            that cannot be opened or migrated, or with ``create=False`` a missing SQLite
            file. Messages carry the URL without its password.
    """

    def __init__(self, url: str | None = None, *, echo: bool = False,
                 create: bool = True) -> None:
        if url is None:
            from autopeft.paths import default_storage_url

            url = default_storage_url()
        self.url: str = url
        self.safe_url: str = redact(url)
        validate_url(url)
        if not create:
            require_existing(url)
        self._engine = open_engine(url, echo=echo)
        self._read = sessionmaker(self._engine, expire_on_commit=False)
        self._write = sessionmaker(
            self._engine.execution_options(**{WRITE: True}), expire_on_commit=False
        )
        try:
            self._upgrade()
        except (OperationalError, InterfaceError) as exc:
            self._engine.dispose()
            raise connection_error(url, exc) from None
        except DBAPIError as exc:
            self._engine.dispose()
            raise AutopeftError(
                f"cannot migrate storage '{self.safe_url}': {short_reason(url, exc)}"
            ) from None

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection ------------------------------------------------------------------

    def _upgrade(self) -> None:
        with self._engine.execution_options(**{WRITE: True}).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            command.upgrade(alembic_config(conn), "head")

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back entirely on error."""
        with self._write.begin() as session:
            yield session

    def close(self) -> None:
        """Release all pooled connections."""
        self._engine.dispose()

    def optuna_storage(self, **kwargs: Any):
        """An ``optuna.storages.RDBStorage`` on the same database (Optuna imported lazily).

        Optuna's tables (``studies``, ``trials``, ``alembic_version``) do not collide with
        ours. For SQLite a 30 s lock timeout is added, as for the Store itself.
        """
        from optuna.storages import RDBStorage

        if parse(self.url).get_backend_name() == "sqlite":
            engine_kwargs = kwargs.pop("engine_kwargs", None) or {}
            engine_kwargs.setdefault("connect_args", {"timeout": 30})
            kwargs["engine_kwargs"] = engine_kwargs
            return RDBStorage(self.url, **kwargs)
        # RDBStorage creates Optuna's schema with metadata.create_all; several searches
        # starting at once on a fresh PostgreSQL database race on its enum types
        # ("duplicate key ... pg_type_typname_nsp_index"). Hold our advisory lock meanwhile.
        with self._engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            try:
                return RDBStorage(self.url, **kwargs)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})

    # -- studies ---------------------------------------------------------------------

    def _study_id(self, session: Session, name: str) -> int:
        sid = session.scalar(select(StudyRow.id).where(StudyRow.name == name))
        if sid is None:
            raise self._no_study(name)
        return sid

    def _no_study(self, name: str) -> AutopeftError:
        return AutopeftError(
            f"no study named '{name}' in {self.safe_url}; `autopeft studies` lists them"
        )

    def create_study(
        self,
        name: str,
        *,
        task: str,
        model: str,
        space_name: str,
        space: dict,
        budget: dict,
        hardware: dict,
        settings: dict,
        objectives: list[tuple[str, str]],
    ) -> StudyRecord:
        """Record a new study (status ``running``).

        Raises:
            AutopeftError: a study with this name exists, or the objectives are invalid.
        """
        if not name or not isinstance(name, str) or len(name) > 255:
            raise AutopeftError(f"study name must be 1-255 characters, got {name!r}")
        row = StudyRow(
            name=name,
            task=task,
            model=model,
            method_space_name=space_name,
            space=clean_json(space),
            budget=clean_json(budget),
            hardware=clean_json(hardware),
            settings=clean_json(settings),
            objectives=_objectives(objectives),
            status=StudyStatus.RUNNING.value,
            created_at=utcnow(),
        )
        exists = AutopeftError(
            f"a study named '{name}' already exists in {self.safe_url}; "
            "pick another --name or resume it"
        )
        try:
            with self._tx() as session:
                if session.scalar(select(StudyRow.id).where(StudyRow.name == name)):
                    raise exists
                session.add(row)
                session.flush()
                return row.to_record()
        except IntegrityError:  # lost a race with another process creating the same name
            raise exists from None

    def get_study(self, name: str) -> StudyRecord | None:
        """The study called ``name``, or None."""
        with self._read() as session:
            row = session.scalar(select(StudyRow).where(StudyRow.name == name))
            return None if row is None else row.to_record()

    def require_study(self, name: str) -> StudyRecord:
        """The study called ``name``; AutopeftError naming the database if there is none."""
        study = self.get_study(name)
        if study is None:
            raise self._no_study(name)
        return study

    def list_studies(self) -> list[StudySummary]:
        """All studies, oldest first, with trial counts and the best completed primary."""
        done = TrialRow.status == TrialStatus.COMPLETED.value
        stats = (
            select(
                TrialRow.study_id,
                func.count(TrialRow.id),
                func.sum(case((done, 1), else_=0)),
                func.max(case((done, TrialRow.primary_metric))),
                func.min(case((done, TrialRow.primary_metric))),
            )
            .group_by(TrialRow.study_id)
            .subquery()
        )
        with self._read() as session:
            rows = session.execute(
                select(StudyRow, *stats.c[1:])
                .outerjoin(stats, stats.c.study_id == StudyRow.id)
                .order_by(StudyRow.created_at, StudyRow.id)
            ).all()
        out = []
        for row, n, n_done, best_max, best_min in rows:
            rec = row.to_record()
            best = best_max if rec.primary_direction == "maximize" else best_min
            out.append(
                StudySummary(
                    **rec.__dict__,
                    n_trials=int(n or 0),
                    n_completed=int(n_done or 0),
                    best_primary=None if best is None else float(best),
                )
            )
        return out

    def running_studies(self, *, exclude: str | None = None) -> list[StudyRecord]:
        """Studies marked ``running`` whose search may still be writing, oldest first.

        A study whose recorded controller (``settings`` ``controller_host`` and
        ``controller_pid``) ran on this host and is gone was killed without cleaning up: it
        is left out. Controllers on other hosts cannot be checked and count as alive.

        Args:
            exclude: A study name to leave out (the caller's own, when resuming).
        """
        with self._read() as session:
            rows = session.scalars(
                select(StudyRow).where(StudyRow.status == StudyStatus.RUNNING.value)
                .order_by(StudyRow.id)
            ).all()
            studies = [r.to_record() for r in rows if r.name != exclude]
        return [s for s in studies if controller_alive(s.settings) is not False]

    def concurrency_warning(self, *, exclude: str | None = None) -> str | None:
        """One line to show before a search starts writing, or None.

        SQLite has one write lock per file: several searches on one file queue behind each
        other (and behind every ``front`` reader's snapshot), so a second writer gets a
        warning pointing to PostgreSQL. PostgreSQL never warns.
        """
        if self._engine.dialect.name != "sqlite":
            return None
        others = self.running_studies(exclude=exclude)
        if not others:
            return None
        names = ", ".join(f"'{s.name}'" for s in others[:3]) + (", ..." if len(others) > 3 else "")
        return (
            f"SQLite store {self.safe_url} is used by running search(es) {names}: several "
            "searches at once on one SQLite file wait for its single write lock; use "
            "PostgreSQL (--storage postgresql://user@host/db) for concurrent searches"
        )

    def set_study_status(self, name: str, status: str, *, finished: bool = False,
                         reason: str | None = None) -> None:
        """Set a study's status; ``finished=True`` also stamps ``finished_at`` (UTC now).

        Args:
            reason: Why the study ended so (``failed``, ``interrupted``), kept in its settings
                as ``status_reason`` (:attr:`StudyRecord.status_reason`); any earlier reason
                is dropped.
        """
        if status not in STUDY_STATUSES:
            raise AutopeftError(f"unknown study status {status!r}; one of {STUDY_STATUSES}")
        with self._tx() as session:
            sid = self._study_id(session, name)
            row = session.get(StudyRow, sid)
            row.status = str(status)
            if finished:
                row.finished_at = utcnow()
            settings = {k: v for k, v in (row.settings or {}).items() if k != REASON_KEY}
            if reason:
                settings[REASON_KEY] = " ".join(str(reason).split())
            if settings != row.settings:
                row.settings = clean_json(settings)

    def update_study_settings(self, name: str, changes: dict[str, Any],
                              *, status: str | None = None) -> StudyRecord:
        """Merge ``changes`` into a study's stored settings (and set ``status``) atomically."""
        if status is not None and status not in STUDY_STATUSES:
            raise AutopeftError(f"unknown study status {status!r}; one of {STUDY_STATUSES}")
        with self._tx() as session:
            sid = self._study_id(session, name)
            row = session.get(StudyRow, sid)
            row.settings = clean_json({**(row.settings or {}), **changes})
            if status is not None:
                row.settings = {k: v for k, v in row.settings.items() if k != REASON_KEY}
                row.status = str(status)
                row.finished_at = None
            session.flush()
            return row.to_record()

    def delete_study(self, name: str) -> None:
        """Delete a study and (by cascade) its trials."""
        with self._tx() as session:
            sid = self._study_id(session, name)
            session.execute(delete(TrialRow).where(TrialRow.study_id == sid))
            session.execute(delete(StudyRow).where(StudyRow.id == sid))

    # -- trials ----------------------------------------------------------------------

    def add_trial(
        self,
        study_name: str,
        *,
        number: int,
        method: str,
        params: dict,
        learning_rate: float | None,
        status: str,
        reason: str | None = None,
        primary_metric: float | None = None,
        metrics: dict | None = None,
        trainable_params: int | None = None,
        total_params: int | None = None,
        peak_memory_bytes: int | None = None,
        memory_kind: str | None = None,
        train_seconds: float | None = None,
        eval_seconds: float | None = None,
        examples_per_second: float | None = None,
        steps: int | None = None,
        unparseable_predictions: int | None = None,
        eval_examples: int | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        extra: dict | None = None,
    ) -> TrialRecord:
        """Record one finished trial, whatever its status.

        Raises:
            AutopeftError: unknown status, unknown study or a trial number already used in
                this study. Nothing is written in that case.
        """
        if status not in TRIAL_STATUSES:
            raise AutopeftError(f"unknown trial status {status!r}; one of {TRIAL_STATUSES}")
        row = TrialRow(
            number=int(number),
            method=method,
            params=clean_json(params) or {},
            learning_rate=_float(learning_rate),
            status=str(status),  # the plain value, also for a TrialStatus
            reason=reason,
            primary_metric=_float(primary_metric),
            metrics=clean_json(metrics) or {},
            trainable_params=_int(trainable_params),
            total_params=_int(total_params),
            peak_memory_bytes=_int(peak_memory_bytes),
            memory_kind=memory_kind,
            train_seconds=_float(train_seconds),
            eval_seconds=_float(eval_seconds),
            examples_per_second=_float(examples_per_second),
            steps=_int(steps),
            unparseable_predictions=_int(unparseable_predictions),
            eval_examples=_int(eval_examples),
            started_at=started_at,
            finished_at=finished_at,
            is_pareto=False,
            extra=clean_json(extra),
        )
        try:
            with self._tx() as session:
                row.study_id = self._study_id(session, study_name)
                session.add(row)
                session.flush()
                return row.to_record(study_name)
        except IntegrityError:
            raise AutopeftError(
                f"trial number {number} already exists in study '{study_name}'"
            ) from None

    def trials(self, study_name: str, *, status: str | None = None) -> list[TrialRecord]:
        """The study's trials ordered by number, optionally only those with ``status``."""
        if status is not None and status not in TRIAL_STATUSES:
            raise AutopeftError(f"unknown trial status {status!r}; one of {TRIAL_STATUSES}")
        with self._read() as session:
            sid = self._study_id(session, study_name)
            query = select(TrialRow).where(TrialRow.study_id == sid)
            if status is not None:
                query = query.where(TrialRow.status == str(status))
            rows = session.scalars(query.order_by(TrialRow.number)).all()
            return [r.to_record(study_name) for r in rows]

    def trial_page(self, study_name: str, *, status: str | None = None,
                   method: str | None = None, limit: int | None = None,
                   offset: int = 0, after: int | None = None) -> tuple[int, list[TrialRecord]]:
        """One page of the study's trials by number, and how many match in all.

        The filters and ``ORDER BY number`` use the (study_id, status) and (study_id, number)
        indexes, so a page of a 100,000-trial study costs one index range, not a full load.

        Args:
            status: Only trials with this status.
            method: Only trials of this method.
            limit: At most this many trials (None: all from ``offset`` on).
            offset: Trials to skip first (in number order).
            after: Only trials numbered above this (a cursor: an index seek, where a large
                ``offset`` walks past every skipped row).

        Returns:
            (total matching trials, filters only, not ``after``; the page's trials).
        """
        if status is not None and status not in TRIAL_STATUSES:
            raise AutopeftError(f"unknown trial status {status!r}; one of {TRIAL_STATUSES}")
        with self._read() as session:
            sid = self._study_id(session, study_name)
            where = [TrialRow.study_id == sid]
            if status is not None:
                where.append(TrialRow.status == str(status))
            if method is not None:
                where.append(TrialRow.method == method)
            total = session.scalar(select(func.count(TrialRow.id)).where(*where)) or 0
            if after is not None:
                where.append(TrialRow.number > int(after))
            query = select(TrialRow).where(*where).order_by(TrialRow.number).offset(offset)
            if limit is not None:
                query = query.limit(limit)
            return int(total), [r.to_record(study_name) for r in session.scalars(query)]

    def get_trial(self, study_name: str, number: int) -> TrialRecord | None:
        """Trial ``number`` of the study, or None (AutopeftError if there is no study)."""
        with self._read() as session:
            sid = self._study_id(session, study_name)
            row = session.scalar(select(TrialRow).where(TrialRow.study_id == sid,
                                                        TrialRow.number == int(number)))
            return None if row is None else row.to_record(study_name)

    def front(self, study_name: str, objectives: Sequence[Objective]) -> list[TrialRecord]:
        """The Pareto front recomputed from the study's completed trials, best first.

        Reads only the objective values of all completed trials and full rows for the front
        alone (:func:`autopeft.store.query.front_records`): fast on 100,000 trials.
        """
        from autopeft.store.query import front_records

        with self._read() as session:
            sid = self._study_id(session, study_name)
            return front_records(session, sid, study_name, objectives)

    def front_inputs(
        self, study_name: str, objectives: Sequence[Objective], primary: str
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """Objective values and :class:`~autopeft.store.query.TrialFacts` of every completed
        trial, rows aligned: what :func:`autopeft.front.front_trials` ranks within noise."""
        from autopeft.store.query import objective_matrix, trial_facts

        with self._read() as session:
            sid = self._study_id(session, study_name)
            numbers, values = objective_matrix(session, sid, objectives)
            facts = trial_facts(session, sid, primary)
        order = np.argsort(facts.numbers)
        at = order[np.searchsorted(facts.numbers, numbers, sorter=order)]
        facts.numbers = facts.numbers[at]
        facts.eval_examples, facts.metric_se = facts.eval_examples[at], facts.metric_se[at]
        facts.confirms = facts.confirms[at]
        facts.memory_kind = [facts.memory_kind[i] for i in at]
        facts.meter = [facts.meter[i] for i in at]
        return numbers, values, facts

    def trials_numbered(self, study_name: str, numbers: Iterable[int]) -> list[TrialRecord]:
        """The study's trials with these numbers, ordered by number (unknown ones omitted)."""
        wanted = sorted({int(n) for n in numbers})
        out: list[TrialRecord] = []
        with self._read() as session:
            sid = self._study_id(session, study_name)
            for start in range(0, len(wanted), 500):
                query = select(TrialRow).where(TrialRow.study_id == sid,
                                               TrialRow.number.in_(wanted[start:start + 500]))
                out += [r.to_record(study_name) for r in session.scalars(query)]
        return sorted(out, key=lambda t: t.number)

    def set_pareto(self, study_name: str, numbers: Iterable[int]) -> None:
        """Mark exactly these trial numbers as the Pareto front (one transaction).

        Raises:
            AutopeftError: a number is not a trial of this study (nothing is changed).
        """
        wanted = sorted({int(n) for n in numbers})
        with self._tx() as session:
            sid = self._study_id(session, study_name)
            if wanted:
                known = set(
                    session.scalars(
                        select(TrialRow.number).where(
                            TrialRow.study_id == sid, TrialRow.number.in_(wanted)
                        )
                    )
                )
                missing = [n for n in wanted if n not in known]
                if missing:
                    raise AutopeftError(f"study '{study_name}' has no trials numbered {missing}")
            session.execute(
                update(TrialRow)
                .where(TrialRow.study_id == sid)
                .values(is_pareto=TrialRow.number.in_(wanted))
            )

    def next_trial_number(self, study_name: str) -> int:
        """One more than the highest trial number so far (0 for a new study).

        Not reserved: with several writers, :meth:`add_trial` rejects a number used twice.
        """
        with self._read() as session:
            sid = self._study_id(session, study_name)
            top = session.scalar(select(func.max(TrialRow.number)).where(TrialRow.study_id == sid))
            return 0 if top is None else int(top) + 1
