"""The Pareto front's rules: which trials count, how objective values are read, and order.

One place for what ``front``, ``search``, ``confirm`` and the Tune callback all mean by "the
front": the front within noise. Each objective is ranked at its resolution (the metric's
standard error, the memory meter's run-to-run noise, exact counts), a trial's repeats with
other seeds (``extra["confirms"]``) are averaged into it, and points within noise of each
other are tied (:class:`FrontTrial`). Rendering lives in :mod:`autopeft.report`. Importing
this module loads numpy only (no SQLAlchemy, no rich): trials are any objects with
``TrialRecord``'s attributes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, is_dataclass, replace
from typing import Any

import numpy as np

from autopeft.pareto import direction_sign, epsilon_pareto_mask, epsilon_ties
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


# Run-to-run noise of each peak-memory meter, in bytes (one standard deviation): the memory
# resolution of the front. cpu_rss was measured with scripts/bench_meter_noise.py (ln_tuning on
# MiniLM/SST-2, batch 32, 128 tokens, 2 shared cores): std 8.8 MiB over 5 fresh processes and
# 17.3 MiB over 5 runs in one warm process, as search trials run (warm Ray workers); 18 MiB is
# the latter rounded up. cpu_tensors counts tensor bytes exactly. cuda_allocated has not been
# measured (no GPU here): taken as exact until scripts/bench_meter_noise.py runs on one.
MEMORY_NOISE_BYTES = {"cuda_allocated": 0, "cpu_tensors": 0, "cpu_rss": 18 * 2**20}
# Metrics on [-1, 1]: without a stored standard error their worst-case SE is 1/sqrt(n).
_SIGNED_METRICS = frozenset({"matthews_correlation", "pearson", "spearman"})
_MEMORY_ATTR = "peak_memory_bytes"


def memory_meter(memory_kind: str | None, meter: str | None) -> str | None:
    """Which meter measured a peak: the trial's ``extra["peak_memory_meter"]``, else read
    from ``memory_kind`` (rows from before the meter was recorded: RSS growth on CPU)."""
    if meter:
        return meter
    kind = memory_kind or ""
    if kind.startswith("cuda"):
        return "cuda_allocated"
    if kind.startswith("cpu"):
        return "cpu_rss"
    return None  # predicted or unknown: nothing measured, nothing to blur


def metric_standard_error(name: str, value: float, n: float | None,
                          stored: float | None = None) -> float:
    """The standard error of a dev metric scored on ``n`` examples.

    A stored SE (the trial's bootstrap, ``metrics["<metric>_se"]``) wins. Otherwise accuracy
    gets the binomial SE, with the Agresti-Coull centre (k + 2) / (n + 4) so that 0 and 1
    are not exact; other metrics (F1, MCC, correlations), for which the binomial SE does not
    apply, get the worst case of a proportion, 0.5/sqrt(n), or 1/sqrt(n) for metrics on
    [-1, 1]. Without ``n`` nothing is known about the noise: 0.
    """
    def arr(x: float | None) -> np.ndarray:
        return np.array([np.nan if x is None else x], dtype=float)

    return float(_standard_errors(name, arr(value), arr(n), arr(stored))[0])


def _standard_errors(name: str, values: np.ndarray, n: np.ndarray,
                     stored: np.ndarray) -> np.ndarray:
    """:func:`metric_standard_error` of many trials at once (NaN: not known)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "accuracy":
            p = (np.clip(values, 0.0, 1.0) * n + 2) / (n + 4)
            se = np.sqrt(p * (1 - p) / (n + 4))
        else:
            se = (1.0 if name in _SIGNED_METRICS else 0.5) / np.sqrt(n)
        se = np.where(np.isfinite(n) & (n > 0) & np.isfinite(values), se, 0.0)
        return np.where(np.isfinite(stored) & (stored >= 0), stored, se)


@dataclass(frozen=True)
class FrontTrial:
    """A front point: a stored trial (its attributes read through) with what the front
    learned about it. When it was confirmed (``autopeft confirm``) ``trial`` holds the mean
    over its seeds as the objective values.

    Attributes:
        trial: The original trial's record (objective values: means over the seeds).
        seeds: Completed runs averaged (1 + completed repeats).
        metric_std: Standard deviation of the primary metric over the seeds (None for one).
        tied_with: Front trials within the resolution of this one in every objective.
        resolution: The resolution this point was ranked with, per objective name.
        repeats: Numbers of the completed repeats averaged in.
    """

    trial: Any
    seeds: int = 1
    metric_std: float | None = None
    tied_with: tuple[int, ...] = ()
    resolution: dict = field(default_factory=dict)
    repeats: tuple[int, ...] = ()

    def __getattr__(self, name: str) -> Any:
        if name == "trial":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.trial, name)


def _resolutions(objectives: Sequence[Sequence[str]], values: np.ndarray, eval_n: np.ndarray,
                 stored_se: np.ndarray, meters: Sequence[str | None]) -> np.ndarray:
    """Per-trial resolution of each objective (see README, "Fronts within noise")."""
    res = np.zeros(values.shape)
    if not len(values):
        return res
    res[:, 0] = _standard_errors(objectives[0][0], values[:, 0], eval_n, stored_se)
    for j, (name, _) in enumerate(objectives[1:], start=1):
        if ALIASES.get(name, name) == _MEMORY_ATTR:
            res[:, j] = [MEMORY_NOISE_BYTES.get(m, 0) if m else 0 for m in meters]
    return res


def _noise_front(objectives: Sequence[Sequence[str]], numbers: np.ndarray, values: np.ndarray,
                 res: np.ndarray, confirms: np.ndarray) -> list[dict[str, Any]]:
    """The front within noise of completed trials, confirmed ones as the mean of their seeds.

    Returns one dict per front point (unordered): number, values (means), resolution, seeds,
    metric_std, repeats, tied_with. A repeat whose original is not ranked is not either.
    """
    known = np.isfinite(values).all(axis=1)
    repeat = ~np.isnan(confirms)
    base = np.flatnonzero(known & ~repeat)
    if not len(base):
        return []
    means, resolution = values[base].copy(), res[base].copy()
    seeds = np.ones(len(base), dtype=int)
    std = np.full(len(base), np.nan)
    repeats: dict[int, tuple[int, ...]] = {}
    rows = np.flatnonzero(known & repeat)
    if len(rows):
        at = {int(numbers[i]): g for g, i in enumerate(base)}
        groups: dict[int, list[int]] = {}
        for i in rows:
            g = at.get(int(confirms[i]))
            if g is not None:
                groups.setdefault(g, []).append(int(i))
        for g, members in groups.items():
            members = [int(base[g]), *sorted(members, key=lambda i: numbers[i])]
            n = len(members)
            means[g] = values[members].mean(axis=0)
            std[g] = values[members, 0].std(ddof=1)
            seeds[g] = n
            repeats[g] = tuple(int(numbers[i]) for i in members[1:])
            # Eval-set noise does not shrink with seeds (same dev set); the seed-to-seed
            # spread of the mean does, and so does a meter's run-to-run noise.
            resolution[g] = res[members].mean(axis=0)
            resolution[g, 1:] /= math.sqrt(n)
            resolution[g, 0] = max(resolution[g, 0], std[g] / math.sqrt(n))
    directions = [d for _, d in objectives]
    on = np.flatnonzero(epsilon_pareto_mask(means, directions, resolution))
    ties = epsilon_ties(means[on], directions, resolution[on])
    names = [name for name, _ in objectives]
    return [{"number": int(numbers[base[g]]), "seeds": int(seeds[g]),
             "metric_std": None if np.isnan(std[g]) else float(std[g]),
             "repeats": repeats.get(int(g), ()), "values": means[g].tolist(),
             "resolution": dict(zip(names, resolution[g].tolist(), strict=True)),
             "tied_with": tuple(sorted(int(numbers[base[on[b]]]) for b in ties[a]))}
            for a, g in enumerate(on)]


def _front_records(points: list[dict[str, Any]], records: dict[int, Any],
                   objectives: Sequence[Sequence[str]]) -> list[FrontTrial]:
    front = []
    for p in points:
        trial = records[p["number"]]
        if p["seeds"] > 1:  # the means become the objective values
            changes: dict[str, Any] = {}
            metrics = dict(trial.metrics or {})
            for i, ((name, _), value) in enumerate(zip(objectives, p["values"], strict=True)):
                attr = "primary_metric" if i == 0 else ALIASES.get(name, name)
                current = getattr(trial, attr, None) if attr in NUMERIC_ATTRIBUTES else None
                if current is not None:
                    changes[attr] = round(value) if isinstance(current, int) else value
                else:
                    metrics[name] = value
            changes["metrics"] = metrics
            if is_dataclass(trial):
                trial = replace(trial, **changes)
            else:  # any object with TrialRecord's attributes
                trial = copy.copy(trial)
                for attr, value in changes.items():
                    setattr(trial, attr, value)
        front.append(FrontTrial(trial, seeds=p["seeds"], metric_std=p["metric_std"],
                                tied_with=p["tied_with"], resolution=p["resolution"],
                                repeats=p["repeats"]))
    return sorted(front, key=lambda t: front_order(t, objectives[0][1]))


def _float(value: Any) -> float:
    number = _number(value)
    return np.nan if number is None else number


def pareto_trials(
    trials: Sequence[Any], objectives: Sequence[Sequence[str]] = OBJECTIVES
) -> list[FrontTrial]:
    """The front within noise among completed trials with every objective known, best
    primary first (descending when maximised, ascending when minimised; ties by number).

    Repeats of a trial (``extra["confirms"]``) are averaged into it (:class:`FrontTrial`);
    a trial is on the front unless another is better by more than the pair's resolution in
    one objective and worse beyond it in none (:func:`autopeft.pareto.epsilon_pareto_mask`).
    """
    objectives = list(objectives) or list(OBJECTIVES)
    done = [t for t in trials if t.status == TrialStatus.COMPLETED]
    if not done:
        return []
    values = np.array([[_float(objective_value(t, name, i)) for i, (name, _)
                        in enumerate(objectives)] for t in done], dtype=float)
    name0 = objectives[0][0]
    eval_n = np.array([_float(getattr(t, "eval_examples", None)) for t in done])
    stored = np.array([_float((t.metrics or {}).get(f"{name0}_se")) for t in done])
    extras = [getattr(t, "extra", None) or {} for t in done]
    meters = [memory_meter(getattr(t, "memory_kind", None), x.get("peak_memory_meter"))
              for t, x in zip(done, extras, strict=True)]
    confirms = np.array([_float(x.get("confirms")) for x in extras])
    numbers = np.array([t.number for t in done], dtype=np.int64)
    res = _resolutions(objectives, values, eval_n, stored, meters)
    points = _noise_front(objectives, numbers, values, res, confirms)
    return _front_records(points, {t.number: t for t in done}, objectives)


def front_order(trial: Any, primary_direction: str) -> tuple[float, int]:
    """Sort key of front trials: best primary first, ties by trial number."""
    return direction_sign(primary_direction) * trial.primary_metric, trial.number


def front_trials(store: Any, study_name: str) -> list[FrontTrial]:
    """The front within noise recomputed from the stored trials (``is_pareto`` is not
    trusted): the same trials, in the same order, as :func:`pareto_trials` of the completed
    trials, but only objective values and a few facts are read for all of them (fast on
    100,000 trials), and full rows for the front and its repeats alone.
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
    numbers, values, facts = store.front_inputs(study_name, sources, objectives[0][0])
    if not len(numbers):
        return []
    meters = [memory_meter(k, m) for k, m in zip(facts.memory_kind, facts.meter, strict=True)]
    res = _resolutions(objectives, values, facts.eval_examples, facts.metric_se, meters)
    points = _noise_front(objectives, numbers, values, res, facts.confirms)
    wanted = {p["number"] for p in points} | {r for p in points for r in p["repeats"]}
    records = {t.number: t for t in store.trials_numbered(study_name, wanted)}
    return _front_records(points, records, objectives)
