"""Replay searches against a frozen table of real trials: lookups instead of training.

A table (``scripts/build_table.py``) holds one row per configuration of a finite search
space, with its final dev metric, its dev metric after every epoch, trainable parameters and
peak memory. :func:`replay_search` drives the same :class:`StudySearcher` and Optuna sampler
that ``autopeft search`` uses, but answers each suggested configuration with its table row,
so a sampler's search efficiency is measured in seconds instead of hours.
:func:`replay_asha` does the same with the per-epoch curves and the ASHA rule that
``--scheduler asha`` gets from Ray Tune, counting the epochs that were trained.

Objectives are autopeft's (``front.OBJECTIVES``): dev metric max, trainable parameters min,
peak memory min. Hypervolume is measured on normalised values (:class:`Normaliser`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autopeft.controller.searcher import (
    NUMBER_KEY,
    StudySearcher,
    config_key,
    open_study,
)
from autopeft.errors import AutopeftError
from autopeft.pareto import hypervolume
from autopeft.status import TrialStatus

METRICS = ("primary_metric", "trainable_params", "peak_memory")
MODES = ("max", "min", "min")
# Normalised reference point: the chance-level metric, and 10% of the table's range beyond
# its largest (log) parameter count and peak memory, so every point that learned counts.
REFERENCE = (1.0, 1.1, 1.1)
# The table's columns (scripts/build_table.py writes them; dev_curve is a JSON list).
TABLE_COLUMNS = (
    "setting", "key", "method", "params", "learning_rate", "status", "reason",
    "primary_metric", "dev_curve", "trainable_params", "total_params", "predicted_peak_bytes",
    "peak_memory_bytes", "memory_kind", "train_seconds", "eval_seconds", "wall_seconds",
    "steps", "task", "train_samples", "eval_samples", "epochs", "batch_size", "max_length",
    "seed",
)


@dataclass(frozen=True)
class Row:
    """One configuration's outcome, as the table holds it."""

    key: str
    method: str
    status: str
    metric: float | None
    curve: tuple[float, ...]
    trainable_params: int | None
    peak_memory: float | None
    epochs: float  # epochs a full-budget run of this row trained

    @property
    def completed(self) -> bool:
        return self.status == TrialStatus.COMPLETED and self.metric is not None

    def result(self) -> dict[str, Any]:
        """What the trainable reports at the end of this trial (the searcher's input)."""
        if not self.completed:
            return {"status": self.status}
        return {"status": TrialStatus.COMPLETED, "primary_metric": self.metric,
                "trainable_params": self.trainable_params, "peak_memory": self.peak_memory}


def _number(text: str) -> float | None:
    return float(text) if text not in ("", "None") else None


def load_table(path: str | Path) -> dict[str, dict[str, Row]]:
    """The table's rows by setting, then by configuration key."""
    tables: dict[str, dict[str, Row]] = {}
    with Path(path).open(newline="") as f:
        for r in csv.DictReader(f):
            per_epoch = math.ceil(int(r["train_samples"]) / int(r["batch_size"]))
            steps = _number(r["steps"])
            tables.setdefault(r["setting"], {})[r["key"]] = Row(
                key=r["key"], method=r["method"], status=r["status"],
                metric=_number(r["primary_metric"]),
                curve=tuple(json.loads(r["dev_curve"] or "[]")),
                trainable_params=None if r["trainable_params"] == "" else int(
                    r["trainable_params"]),
                peak_memory=_number(r["peak_memory_bytes"]),
                epochs=(steps / per_epoch) if steps is not None else float(r["epochs"]),
            )
    return tables


@dataclass
class Normaliser:
    """Maps rows to minimisation-space points in [0, ~1] for hypervolume.

    metric: ``(best - metric) / (best - chance)``, so chance level is the reference (1.0):
    a configuration that learned nothing is no trade-off and adds no volume.
    trainable parameters: log10, scaled to the table's range (they span orders of
    magnitude). peak memory: linear, scaled to the table's range.
    """

    chance: float
    best: float
    log_params: tuple[float, float]
    memory: tuple[float, float]
    reference: tuple[float, float, float] = REFERENCE

    @classmethod
    def from_rows(cls, rows: Iterable[Row], chance: float) -> Normaliser:
        done = [r for r in rows if r.completed]
        if not done:
            raise AutopeftError("the table has no completed rows to normalise by")
        logp = [math.log10(max(r.trainable_params, 1)) for r in done]
        mem = [r.peak_memory for r in done]
        return cls(chance=chance, best=max(r.metric for r in done),
                   log_params=(min(logp), max(logp)), memory=(min(mem), max(mem)))

    def point(self, row: Row) -> tuple[float, float, float]:
        def scale(x: float, lo_hi: tuple[float, float]) -> float:
            lo, hi = lo_hi
            return (x - lo) / (hi - lo) if hi > lo else 0.0

        span = self.best - self.chance
        metric = (self.best - row.metric) / span if span > 0 else 1.0
        return (metric, scale(math.log10(max(row.trainable_params, 1)), self.log_params),
                scale(row.peak_memory, self.memory))

    def hypervolume(self, rows: Iterable[Row]) -> float:
        pts = [self.point(r) for r in rows if r.completed]
        if not pts:
            return 0.0
        return hypervolume(np.array(pts), ["minimize"] * 3, self.reference)


def hypervolume_curve(rows: Sequence[Row], norm: Normaliser) -> list[float]:
    """Hypervolume of the first 1, 2, ... rows (recomputed only when a row adds a point)."""
    curve, kept, value = [], [], 0.0
    for row in rows:
        if row.completed:
            kept.append(row)
            value = norm.hypervolume(kept)
        curve.append(value)
    return curve


def first_reaching(curve: Sequence[float], target: float, costs: Sequence[float] | None = None
                   ) -> float:
    """Trials (or, with ``costs``, summed cost) until ``curve`` reaches ``target``; inf if
    it never does."""
    total = 0.0
    for i, value in enumerate(curve):
        total += 1 if costs is None else costs[i]
        if value >= target * (1 - 1e-12):
            return total
    return math.inf


def _params_of(study: Any, number: int) -> dict[str, Any]:
    return study.get_trials(deepcopy=False)[number].params


def _lookup(table: dict[str, Row], key: str) -> Row:
    try:
        return table[key]
    except KeyError:
        raise AutopeftError(f"configuration {key} is not in the table: the table and the "
                            "space differ; rebuild the table from this space") from None


def replay_search(table: dict[str, Row], space: Any, sampler: Any, *, n_trials: int,
                  seed: int = 0, cover_methods: bool = False,
                  on_result: Callable[[Row, int], dict[str, Any]] | None = None,
                  ) -> list[tuple[Row, dict[str, Any]]]:
    """Run ``n_trials`` of a search by lookup; returns each trial's row and what was told.

    Configurations come from autopeft's :class:`StudySearcher` over ``space`` with
    ``sampler`` (an in-memory study), as ``autopeft search`` asks them, duplicates and
    ``--cover-methods`` included. ``on_result(row, i)`` may replace the reported result
    (early stopping); by default a trial reports its row's full-budget result.
    """
    study = open_study(None, "replay", sampler, METRICS, MODES)
    first = [{"method": m} for m in sorted(space.methods)][:n_trials] if cover_methods else None
    searcher = StudySearcher(space, study=study, metrics=list(METRICS), seed=seed, first=first)
    out = []
    for i in range(n_trials):
        config = searcher.suggest(f"replay-{i}")
        if not isinstance(config, dict):  # FINISHED: every configuration ran
            break
        row = _lookup(table, config_key(_params_of(study, config[NUMBER_KEY])))
        result = on_result(row, i) if on_result else row.result()
        searcher.on_trial_complete(f"replay-{i}", result)
        out.append((row, result))
    return out


@dataclass
class Asha:
    """ASHA's stopping rule as Ray Tune's ``ASHAScheduler`` applies it (one bracket).

    Written out rather than driving Ray's scheduler, which needs live Tune trial objects:
    ``ray/tune/schedulers/async_hyperband.py`` ``_Bracket.on_result``: at the first report
    at or past a rung's milestone (highest rung first), the trial is recorded there and
    stopped if its value is below the ``(1 - 1/rf)`` percentile of the values recorded at
    that rung so far. autopeft reports once per epoch, then at the end
    (``training_iteration`` = epochs + 1 at most), with grace period 1 and rf 2.
    """

    max_t: int
    grace_period: int = 1
    reduction_factor: int = 2
    rungs: dict[int, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k, milestones = 0, []
        while self.grace_period * self.reduction_factor ** k < self.max_t:
            milestones.append(self.grace_period * self.reduction_factor ** k)
            k += 1
        self.rungs = {m: [] for m in milestones}

    def stops(self, iteration: int, value: float, seen: set[int]) -> bool:
        """Whether a trial reporting ``value`` at ``iteration`` stops; ``seen`` holds the
        milestones it was already recorded at (updated)."""
        for milestone in sorted(self.rungs, reverse=True):
            if iteration < milestone or milestone in seen:
                continue
            recorded = self.rungs[milestone]
            cutoff = (float(np.nanpercentile(recorded, (1 - 1 / self.reduction_factor) * 100))
                      if recorded else None)
            recorded.append(value)
            seen.add(milestone)
            return cutoff is not None and value < cutoff
        return False

    def run(self, row: Row) -> tuple[float, bool]:
        """(epochs trained, stopped early) for one trial of ``row`` under this rule."""
        if not row.completed:
            return row.epochs, False
        seen: set[int] = set()
        # the per-epoch reports are iterations 1..E-1; the final result is iteration E
        for iteration, value in enumerate(row.curve[:-1], 1):
            if self.stops(iteration, value, seen):
                return float(iteration), True
        return row.epochs, False


def replay_asha(table: dict[str, Row], space: Any, sampler: Any, *, n_trials: int,
                epochs: int, seed: int = 0, cover_methods: bool = False,
                ) -> list[tuple[Row, float, bool]]:
    """A search with ``--scheduler asha``, by lookup: (row, epochs trained, stopped) each.

    A stopped trial is told to the sampler as autopeft tells it (its last report has status
    ``running``: PRUNED), and is not on the front: only completed rows count.
    """
    asha = Asha(max_t=epochs + 1)
    spent: list[tuple[float, bool]] = []

    def early(row: Row, i: int) -> dict[str, Any]:
        trained, stopped = asha.run(row)
        spent.append((trained, stopped))
        if stopped:
            return {"status": TrialStatus.RUNNING, "primary_metric": row.curve[int(trained) - 1]}
        return row.result()

    trials = replay_search(table, space, sampler, n_trials=n_trials, seed=seed,
                           cover_methods=cover_methods, on_result=early)
    return [(row, t, s) for (row, _), (t, s) in zip(trials, spent, strict=True)]
