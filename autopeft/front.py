"""The Pareto front's rules: which trials count, how objective values are read, and order.

One place for what ``front``, ``search``, the store's fast SQL path and the Tune callback
all mean by "the front"; rendering lives in :mod:`autopeft.report`. Importing this module
loads numpy only (no SQLAlchemy, no rich): trials are any objects with ``TrialRecord``'s
attributes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from autopeft.pareto import direction_sign, pareto_mask
from autopeft.status import TrialStatus

# Used when a study stored no objectives; the first objective is always the primary metric.
OBJECTIVES: tuple[tuple[str, str], ...] = (
    ("primary_metric", "maximize"),
    ("trainable_params", "minimize"),
    ("peak_memory_bytes", "minimize"),
)
# Objective names that are spelled differently from the TrialRecord attribute.
ALIASES = {"peak_memory": "peak_memory_bytes", "memory": "peak_memory_bytes"}
# Trial attributes an objective may name: the numeric columns of autopeft_trials but the
# ids, written out so that this module needs no SQLAlchemy (tests/test_front.py checks it).
NUMERIC_ATTRIBUTES = ("primary_metric", "learning_rate", "trainable_params", "total_params",
                      "peak_memory_bytes", "train_seconds", "eval_seconds",
                      "examples_per_second", "steps", "unparseable_predictions",
                      "eval_examples")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def objective_value(trial: Any, name: str, index: int) -> float | None:
    """A trial's value for an objective: the first objective is ``primary_metric``; other
    names are numeric trial attributes (``peak_memory`` = ``peak_memory_bytes``) when set,
    else keys of ``metrics``."""
    if index == 0:
        return _number(trial.primary_metric)
    attr = ALIASES.get(name, name)
    value = getattr(trial, attr, None) if attr in NUMERIC_ATTRIBUTES else None
    if value is None:
        value = (trial.metrics or {}).get(name)
    return _number(value)


def study_objectives(study: Any) -> list[tuple[str, str]]:
    """The study's stored objectives (name, direction), or the defaults."""
    return [tuple(o) for o in (study.objectives or ())] or list(OBJECTIVES)


def pareto_trials(
    trials: Sequence[Any], objectives: Sequence[Sequence[str]] = OBJECTIVES
) -> list[Any]:
    """The non-dominated trials among completed ones with every objective known, best
    primary first (descending when maximised, ascending when minimised; ties by number)."""
    objectives = list(objectives) or list(OBJECTIVES)
    candidates, values = [], []
    for trial in trials:
        if trial.status != TrialStatus.COMPLETED:
            continue
        row = [objective_value(trial, name, i) for i, (name, _) in enumerate(objectives)]
        if all(v is not None for v in row):
            candidates.append(trial)
            values.append(row)
    if not candidates:
        return []
    mask = pareto_mask(np.array(values, dtype=float), [d for _, d in objectives])
    front = [t for t, keep in zip(candidates, mask, strict=True) if keep]
    return sorted(front, key=lambda t: front_order(t, objectives[0][1]))


def front_order(trial: Any, primary_direction: str) -> tuple[float, int]:
    """Sort key of front trials: best primary first, ties by trial number."""
    return direction_sign(primary_direction) * trial.primary_metric, trial.number


def front_trials(store: Any, study_name: str) -> list[Any]:
    """The Pareto front recomputed from the stored trials (``is_pareto`` is not trusted).

    The same trials, in the same order, as :func:`pareto_trials` of the completed trials,
    but only the objective values are read for all of them (fast on 100,000 trials).
    """
    from autopeft.store.query import Objective

    objectives = study_objectives(store.require_study(study_name))
    # Read each value where objective_value reads it: the first objective is always
    # primary_metric; others are a column (when not NULL), else a key of metrics.
    sources = [Objective(objectives[0][1], column="primary_metric")]
    for name, direction in objectives[1:]:
        attr = ALIASES.get(name, name)
        sources.append(Objective(direction, column=attr if attr in NUMERIC_ATTRIBUTES else None,
                                 metric=name))
    return store.front(study_name, sources)
