"""Fast read paths over large studies: the Pareto front without loading every trial.

Turning 100,000 stored trials into ORM objects takes seconds, and even plain tuples of
their objective values cost ~60 ms of Python per 100,000 rows, while the front of such a
study is a few dozen trials. :func:`front_records` therefore

1. reads a random sample of ~1,000 completed trials by number (index lookups) and takes
   the best points of the sample's front as *pivots*;
2. asks the database for the number and objective values of the completed trials that no
   pivot strictly dominates (a few thousand rows; the rest never leave the database);
3. finds the exact front of those with numpy and loads full rows for the front alone.

Dropping points that another stored point dominates never changes the front, so the
result is exactly ``pareto_trials(completed trials)``. Values are read as
:func:`autopeft.front.objective_value` reads them from a record: a column when it is not
NULL, else a number under a key of ``metrics`` (booleans, text and non-finite numbers are no
value). Step 2 filters in SQL only when every objective is a numeric column (the default
objectives); otherwise all values are read and the same pivots are applied in numpy.

``autopeft front`` itself ranks within noise (:func:`autopeft.front.front_trials`): it reads
every completed trial's values with :func:`objective_matrix` and what the resolutions need
with :func:`trial_facts` (no pivots here: a point's resolution and seed mean decide what it
dominates), then full rows for the front alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, bindparam, case, func, not_, null, or_, select
from sqlalchemy.orm import Session

from autopeft.pareto import direction_sign, pareto_mask
from autopeft.status import TrialStatus
from autopeft.store.models import TrialRecord, TrialRow

_PRUNE_FROM = 4096  # fewer trials than this: read them all, pareto_mask is fast enough
_SAMPLE = 960  # trial numbers sampled for pivots (one IN list under SQLite's old 999 cap)
_PIVOTS = 12  # the best pivots leave a few thousand rows; more only lengthen the SQL
_CHUNK = 500  # numbers per IN (...) list when loading rows


@dataclass(frozen=True)
class Objective:
    """Where one objective's value is read from, and which way is better.

    Attributes:
        direction: ``"maximize"``/``"minimize"`` (``"max"``/``"min"`` too).
        column: A column of ``autopeft_trials``, used when it is not NULL.
        metric: A key of ``metrics``, used when there is no column or it is NULL.
    """

    direction: str
    column: str | None = None
    metric: str | None = None

    def __post_init__(self) -> None:
        direction_sign(self.direction)  # raises ValueError on a bad direction
        if self.column is None and self.metric is None:
            raise ValueError("an objective needs a column, a metric or both")
        if self.column is not None and self.column not in TrialRow.__table__.c:
            raise ValueError(f"autopeft_trials has no column {self.column!r}")

    @property
    def sign(self) -> float:
        """-1 for maximised objectives: values times sign are minimised."""
        return direction_sign(self.direction)


def front_records(
    session: Session, study_id: int, study_name: str, objectives: Sequence[Objective]
) -> list[TrialRecord]:
    """The Pareto front of a study's completed trials, best first objective first.

    Equivalent to ``pareto_trials(completed trials, objectives)``: trials missing a value are
    not ranked, identical points are all kept, and the front is sorted by the first
    objective (best first), ties by trial number.

    Args:
        session: An open read session (the Store's).
        study_id: The study's row id.
        study_name: The study's name, copied into the records.
        objectives: At least one objective; the first one orders the result.
    """
    if not objectives:
        raise ValueError("need at least one objective")
    signs = np.array([o.sign for o in objectives])
    pivots = _pivots(session, study_id, objectives)
    numbers, values = objective_matrix(session, study_id, objectives, pivots=pivots)
    known = np.flatnonzero(np.isfinite(values).all(axis=1))
    # "+ 0.0" turns -0.0 into 0.0 so that equal points stay equal after negation.
    pts = values[known] * signs + 0.0
    survivors = _prune(pts, pivots)
    mask = pareto_mask(pts[survivors], ["minimize"] * len(objectives))
    front = survivors[mask]
    order = np.lexsort((numbers[known[front]], pts[front, 0]))
    front_numbers = [int(n) for n in numbers[known[front[order]]]]
    rows: dict[int, TrialRow] = {}
    for start in range(0, len(front_numbers), _CHUNK):
        chunk = front_numbers[start : start + _CHUNK]
        query = select(TrialRow).where(TrialRow.study_id == study_id, TrialRow.number.in_(chunk))
        rows.update((r.number, r) for r in session.scalars(query))
    return [rows[n].to_record(study_name) for n in front_numbers]


def objective_matrix(
    session: Session,
    study_id: int,
    objectives: Sequence[Objective],
    *,
    pivots: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Trial numbers and an ``(n, k)`` float matrix of objective values (NaN = no value) of
    the study's completed trials, in no particular order.

    Args:
        pivots: ``(p, k)`` points in minimisation space (values times ``Objective.sign``).
            When every objective is a numeric column, rows that a pivot strictly dominates
            are left in the database; otherwise this is ignored (all rows are returned).
    """
    dialect = session.get_bind().dialect.name
    where = _completed(study_id)
    exprs: list[ColumnElement[Any]] = []
    for obj in objectives:
        if obj.column is None:
            expr = _metric_expr(dialect, obj.metric)
            exprs.append(null() if expr is None else expr)
        elif _is_numeric(obj.column):
            exprs.append(TrialRow.__table__.c[obj.column])
        else:  # objective_value never ranks a non-number; only NULL falls back to metrics
            exprs.append(null())
    if pivots is not None and len(pivots) and all(_is_numeric(o.column) for o in objectives):
        cols = [TrialRow.__table__.c[o.column] for o in objectives]
        # One NOT per pivot, ANDed: the database stops at the first pivot that dominates a
        # row (an OR of all pivots is evaluated whole by SQLite: ~5x slower). A NULL column
        # keeps its row: its value may come from metrics.
        undominated = and_(*(not_(_dominated_sql(cols, objectives, p)) for p in pivots))
        where = and_(where, or_(*(c.is_(None) for c in cols), undominated))
    result = session.connection().execute(select(TrialRow.number, *exprs).where(where))
    try:
        # Plain DBAPI tuples of numbers and NULLs: numpy converts them in C (None -> NaN),
        # while SQLAlchemy Row objects would cost ~1 s per 100,000 rows here.
        rows = result.cursor.fetchall()
    finally:
        result.close()
    table = np.array(rows, dtype=float).reshape(len(rows), 1 + len(objectives))
    numbers = table[:, 0].astype(np.int64)
    values = table[:, 1:]
    values[~np.isfinite(values)] = np.nan
    for j, obj in enumerate(objectives):
        expr = _metric_expr(dialect, obj.metric) if obj.metric is not None else None
        if obj.column is not None and obj.metric is not None:
            # Only rows without a value can be NULL: in practice none, so no query at all.
            missing = numbers[np.isnan(values[:, j])]
            column = TrialRow.__table__.c[obj.column]
            for start in range(0, len(missing), _CHUNK):
                chunk = [int(n) for n in missing[start : start + _CHUNK]]
                rows_where = _completed(study_id) & column.is_(None) & TrialRow.number.in_(chunk)
                _fill_from_metrics(session, expr, rows_where, obj.metric, numbers, values[:, j])
        elif obj.column is None and expr is None:
            _fill_from_metrics(
                session, None, _completed(study_id), obj.metric, numbers, values[:, j]
            )
    return numbers, values


def _completed(study_id: int) -> ColumnElement[bool]:
    return (TrialRow.study_id == study_id) & (TrialRow.status == TrialStatus.COMPLETED.value)


def _pivots(session: Session, study_id: int, objectives: Sequence[Objective]) -> np.ndarray:
    """Up to ``_PIVOTS`` completed trials' values that dominate the most (minimised).

    A uniform random sample of trial numbers is looked up through the (study_id, number)
    unique index; the front of the sample, best dominators first, serves as pivots. Only
    rows whose every value is a plain column value qualify. Small studies get none.
    """
    k = len(objectives)
    top = session.scalar(select(func.max(TrialRow.number)).where(TrialRow.study_id == study_id))
    if top is None or top + 1 < _PRUNE_FROM or not all(_is_numeric(o.column) for o in objectives):
        return np.empty((0, k))
    picks = np.random.default_rng(study_id).choice(int(top) + 1, _SAMPLE, replace=False)
    cols = [TrialRow.__table__.c[o.column] for o in objectives]
    # Numbers rendered inline: binding ~1,000 parameters costs more than the lookups.
    numbers = bindparam("picks", picks.tolist(), expanding=True, literal_execute=True)
    query = select(*cols).where(_completed(study_id), TrialRow.number.in_(numbers))
    result = session.connection().execute(query)
    try:
        sample = np.array(result.cursor.fetchall(), dtype=float).reshape(-1, k)
    finally:
        result.close()
    sample = sample[np.isfinite(sample).all(axis=1)]
    if not len(sample):
        return np.empty((0, k))
    return _best_pivots(sample * np.array([o.sign for o in objectives]) + 0.0)


def _best_pivots(sample: np.ndarray) -> np.ndarray:
    """Points of the sample's front (minimised) in greedy order: each next pivot dominates
    the most sample points that the ones before it left."""
    front = sample[pareto_mask(sample, ["minimize"] * sample.shape[1])]
    # beats[i, j]: front point i strictly dominates sample point j.
    ge = (sample[None, :, :] >= front[:, None, :]).all(axis=2)
    beats = ge & (sample[None, :, :] > front[:, None, :]).any(axis=2)
    left = np.ones(len(sample), dtype=bool)
    chosen: list[int] = []
    while len(chosen) < _PIVOTS:
        wins = (beats & left).sum(axis=1)
        best = int(np.argmax(wins))
        if wins[best] == 0:
            break
        chosen.append(best)
        left &= ~beats[best]
    return front[chosen]


def _dominated_sql(cols: Sequence[Any], objectives: Sequence[Objective], pivot: np.ndarray) -> Any:
    """SQL: the row is strictly dominated by ``pivot`` (minimisation space)."""
    weak, strict = [], []
    for col, obj, value in zip(cols, objectives, pivot, strict=True):
        value = float(value) * obj.sign + 0.0  # back to the column's own direction
        if col.type.python_type is int:
            # An int binds as an integer: PostgreSQL would compare a float literal as
            # NUMERIC, casting the BIGINT column of every row (~3x slower).
            value = int(value)
        if obj.sign > 0:
            weak.append(col >= value)
            strict.append(col > value)
        else:
            weak.append(col <= value)
            strict.append(col < value)
    return and_(*weak, or_(*strict))


def _fill_from_metrics(
    session: Session,
    expr: ColumnElement[Any] | None,
    where: Any,
    key: str,
    numbers: np.ndarray,
    out: np.ndarray,
) -> None:
    """Set ``out`` to ``metrics[key]`` for the rows matching ``where`` (usually none: the
    rows whose column is NULL). ``expr`` does it in SQL; None loads ``metrics`` whole."""
    if expr is None:
        query = select(TrialRow.number, TrialRow.metrics).where(where)
        pairs = [(n, _number((m or {}).get(key))) for n, m in session.execute(query)]
    else:
        pairs = [(n, v) for n, v in session.execute(select(TrialRow.number, expr).where(where))]
    if pairs:
        order = np.argsort(numbers)
        at = order[np.searchsorted(numbers, [n for n, _ in pairs], sorter=order)]
        got = np.array([v for _, v in pairs], dtype=float)
        got[~np.isfinite(got)] = np.nan
        out[at] = got


def _metric_expr(dialect: str, key: str) -> ColumnElement[Any] | None:
    """SQL for "``metrics[key]`` if it is a JSON number, else NULL", or None if unsupported."""
    if dialect == "postgresql":
        element = TrialRow.metrics[key]
        return case((func.jsonb_typeof(element) == "number", element.as_float()), else_=None)
    if dialect == "sqlite" and '"' not in key and "\\" not in key:
        path = f"$.{json.dumps(key)}"
        # json_extract turns JSON true/false into 1/0: json_type tells them from numbers.
        is_number = func.json_type(TrialRow.metrics, path).in_(("integer", "real"))
        return case((is_number, func.json_extract(TrialRow.metrics, path)), else_=None)
    return None


def _is_numeric(column: str | None) -> bool:
    if column is None:
        return False
    try:
        kind = TrialRow.__table__.c[column].type.python_type
    except NotImplementedError:
        return False
    return kind is int or kind is float  # not bool: objective_value never ranks booleans


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _prune(pts: np.ndarray, pivots: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``pts`` (minimised) that no pivot strictly dominates.

    Needed when the database could not filter (objectives read from ``metrics``): the
    3-objective ``pareto_mask`` sweep is a Python loop over its input, ~0.1 s per 100,000.
    """
    idx = np.arange(len(pts))
    if len(pts) < _PRUNE_FROM or pts.shape[1] < 3:
        return idx
    if not len(pivots):
        pivots = _best_pivots(pts[np.random.default_rng(0).choice(len(pts), _SAMPLE, False)])
    cols = np.ascontiguousarray(pts.T)  # one contiguous row per objective: fast compares
    for pivot in pivots:
        keep = ~_dominated(cols, pivot)
        idx, cols = idx[keep], cols[:, keep]
    return idx


def _dominated(cols: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Which columns of ``cols`` (``(k, n)``, minimised) ``pivot`` strictly dominates."""
    weakly = cols[0] >= pivot[0]
    strictly = cols[0] > pivot[0]
    for row, value in zip(cols[1:], pivot[1:], strict=True):
        weakly &= row >= value
        strictly |= row > value
    return weakly & strictly


@dataclass
class TrialFacts:
    """What the front within noise needs of every completed trial besides its objective
    values, one entry per trial in ``numbers`` order (see :func:`trial_facts`).

    Attributes:
        numbers: Trial numbers.
        eval_examples: Dev examples scored (NaN when not recorded).
        metric_se: Stored standard error of the primary metric, ``metrics["<primary>_se"]``
            (NaN when none).
        memory_kind: The ``memory_kind`` column.
        meter: ``extra["peak_memory_meter"]`` (None in rows written before it existed).
        confirms: ``extra["confirms"]``: the trial this one repeats with another seed (NaN
            for ordinary trials).
    """

    numbers: np.ndarray
    eval_examples: np.ndarray
    metric_se: np.ndarray
    memory_kind: list[str | None]
    meter: list[str | None]
    confirms: np.ndarray


def _extra_expr(dialect: str, key: str) -> ColumnElement[Any] | None:
    """SQL for ``extra[key]`` as text (None: the backend cannot, read ``extra`` whole)."""
    if dialect in ("postgresql", "sqlite"):
        return TrialRow.extra[key].as_string()  # ->> on PostgreSQL, JSON_EXTRACT on SQLite
    return None


def trial_facts(session: Session, study_id: int, primary: str) -> TrialFacts:
    """:class:`TrialFacts` of a study's completed trials, read as plain DBAPI tuples (fast
    on 100,000 trials: JSON keys are extracted by the database where it can)."""
    dialect = session.get_bind().dialect.name
    se = _metric_expr(dialect, f"{primary}_se")
    meter, confirms = _extra_expr(dialect, "peak_memory_meter"), _extra_expr(dialect, "confirms")
    if se is None or meter is None or confirms is None:
        query = select(TrialRow.number, TrialRow.eval_examples, TrialRow.memory_kind,
                       TrialRow.metrics, TrialRow.extra).where(_completed(study_id))
        rows = [(n, e, _number((m or {}).get(f"{primary}_se")), k,
                 (x or {}).get("peak_memory_meter"), (x or {}).get("confirms"))
                for n, e, k, m, x in session.execute(query)]
    else:
        query = select(TrialRow.number, TrialRow.eval_examples, se, TrialRow.memory_kind,
                       meter, confirms).where(_completed(study_id))
        result = session.connection().execute(query)
        try:
            rows = result.cursor.fetchall()
        finally:
            result.close()
    numbers = np.array([r[0] for r in rows], dtype=np.int64)

    def floats(i: int) -> np.ndarray:
        column = [r[i] for r in rows]
        try:  # numbers and NULLs (SQLite): numpy converts them in C, None -> NaN
            if any(isinstance(v, (bool, str)) for v in column[:1]):
                raise TypeError
            out = np.array(column, dtype=float)
        except (TypeError, ValueError):  # text from PostgreSQL's ->>, or anything else
            out = np.full(len(rows), np.nan)
            for j, value in enumerate(column):
                if isinstance(value, str):
                    try:
                        value = float(value)
                    except ValueError:
                        value = None
                if _number(value) is not None:
                    out[j] = value
        out = out.reshape(len(rows))
        out[~np.isfinite(out)] = np.nan
        return out

    return TrialFacts(numbers=numbers, eval_examples=floats(1), metric_se=floats(2),
                      memory_kind=[r[3] for r in rows],
                      meter=[None if r[4] is None else str(r[4]) for r in rows],
                      confirms=floats(5))
