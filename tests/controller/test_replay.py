"""Replay of searches on a frozen table (autopeft.controller.replay): lookups, hypervolume
and the ASHA rule, on a small synthetic table whose optimum is known."""

from __future__ import annotations

import csv
import itertools
import json
import math

import numpy as np
import optuna
import pytest

from autopeft.controller.replay import (
    REFERENCE,
    TABLE_COLUMNS,
    Asha,
    Normaliser,
    Row,
    first_reaching,
    hypervolume_curve,
    load_table,
    replay_asha,
    replay_search,
)
from autopeft.controller.searcher import config_key
from autopeft.errors import AutopeftError
from autopeft.space import configurations, space_from_dict

SPACE = space_from_dict({
    "name": "synthetic",
    "methods": {
        "lora": {"learning_rate": {"choices": [1e-3, 1e-2]},
                 "params": {"r": {"choices": [4, 16]}, "lora_alpha": {"value": 16}}},
        "bitfit": {"learning_rate": {"choices": [1e-3, 3e-3, 1e-2]}},
    },
})
CHANCE = 0.5
BEST_KEY = config_key({"method": "bitfit", "bitfit.learning_rate": 0.003})


def synthetic_rows() -> list[dict]:
    """7 configurations; bitfit at 3e-3 dominates every other one (best metric, fewest
    parameters, least memory), so the true front is that one point."""
    rows = []
    for i, config in enumerate(configurations(SPACE)):
        key = config_key(config)
        best = key == BEST_KEY
        lora = config["method"] == "lora"
        metric = 0.9 if best else 0.55 + 0.03 * i
        curve = [0.5, 0.7, metric] if best else [0.5 + 0.01 * i, 0.52, metric]
        rows.append({
            "setting": "syn", "key": key, "method": config["method"],
            "params": json.dumps({}), "learning_rate": 1e-3, "status": "completed",
            "reason": "", "primary_metric": metric, "dev_curve": json.dumps(curve),
            "trainable_params": 10_000 if best else (100_000 * (1 + i) if lora else 20_000),
            "total_params": 1_000_000, "predicted_peak_bytes": "",
            "peak_memory_bytes": 1000 if best else 1500 + 100 * i,
            "memory_kind": "test", "train_seconds": 1, "eval_seconds": 1, "wall_seconds": 2,
            "steps": 12, "task": "glue/sst2", "train_samples": 64, "eval_samples": 32,
            "epochs": 3, "batch_size": 16, "max_length": 32, "seed": 0,
        })
    # one diverged configuration: no metric, stays out of every front
    diverged = next(r for r in rows if r["key"] != BEST_KEY and r["method"] == "lora")
    diverged.update(status="diverged", primary_metric="", dev_curve="[]", steps=5)
    return rows


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "table.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        writer.writerows(synthetic_rows())
    return load_table(path)["syn"]


def brute_force_hv(points: np.ndarray, ref: np.ndarray, grid: int = 0) -> float:
    """Inclusion-exclusion over every subset: volume of the union of boxes [p, ref]."""
    total = 0.0
    n = len(points)
    for k in range(1, n + 1):
        for subset in itertools.combinations(range(n), k):
            corner = points[list(subset)].max(axis=0)
            total += (-1) ** (k + 1) * np.prod(np.clip(ref - corner, 0, None))
    return float(total)


def test_the_table_loads_with_curves_and_epochs(table):
    assert len(table) == 7
    best = table[BEST_KEY]
    assert best.metric == 0.9 and best.curve == (0.5, 0.7, 0.9) and best.epochs == 3
    diverged = [r for r in table.values() if r.status == "diverged"]
    assert len(diverged) == 1 and not diverged[0].completed
    assert diverged[0].epochs == pytest.approx(5 / 4)  # 5 steps of 4 per epoch


def test_true_hypervolume_is_the_known_optimum_box(table):
    norm = Normaliser.from_rows(table.values(), CHANCE)
    # the optimum is best in all three objectives: it maps to (0, 0, 0)
    assert norm.point(table[BEST_KEY]) == (0.0, 0.0, 0.0)
    assert norm.hypervolume(table.values()) == pytest.approx(np.prod(REFERENCE))
    others = [r for k, r in table.items() if k != BEST_KEY]
    assert norm.hypervolume(others) < np.prod(REFERENCE) - 0.1


def test_normalised_hypervolume_matches_brute_force(table):
    rng = np.random.default_rng(0)
    rows = [Row(key=str(i), method="m", status="completed", metric=float(m), curve=(),
                trainable_params=int(p), peak_memory=float(b), epochs=3)
            for i, (m, p, b) in enumerate(zip(rng.uniform(0.4, 0.95, 9),
                                              10 ** rng.uniform(3, 7, 9),
                                              rng.uniform(1e8, 5e8, 9), strict=True))]
    norm = Normaliser.from_rows(rows, CHANCE)
    pts = np.array([norm.point(r) for r in rows])
    ref = np.array(REFERENCE)
    inside = pts[(pts < ref).all(axis=1)]
    assert norm.hypervolume(rows) == pytest.approx(brute_force_hv(inside, ref), rel=1e-9)
    # a point below chance is outside the reference box: it adds nothing
    low = Row(key="x", method="m", status="completed", metric=0.3, curve=(),
              trainable_params=1000, peak_memory=1e8, epochs=3)
    assert norm.hypervolume([*rows, low]) == pytest.approx(norm.hypervolume(rows))


@pytest.mark.parametrize("make", [
    lambda s: optuna.samplers.RandomSampler(seed=s),
    lambda s: optuna.samplers.TPESampler(seed=s, n_startup_trials=2),
])
def test_replay_visits_every_configuration_once_and_reaches_the_true_hypervolume(table, make):
    trials = replay_search(table, SPACE, make(1), n_trials=50, seed=1)
    keys = [row.key for row, _ in trials]
    assert sorted(keys) == sorted(table)  # each once; the searcher stops when used up
    norm = Normaliser.from_rows(table.values(), CHANCE)
    curve = hypervolume_curve([r for r, _ in trials], norm)
    assert all(b >= a for a, b in itertools.pairwise(curve))
    assert curve[-1] == pytest.approx(np.prod(REFERENCE))
    # the curve jumps to the full volume exactly when the optimum is found
    found = keys.index(BEST_KEY) + 1
    assert first_reaching(curve, np.prod(REFERENCE)) == found
    # each trial was told its own row's values
    for row, told in trials:
        if row.completed:
            assert told["primary_metric"] == row.metric
            assert told["trainable_params"] == row.trainable_params


def test_cover_methods_tries_each_method_first(table):
    trials = replay_search(table, SPACE, optuna.samplers.RandomSampler(seed=0), n_trials=3,
                           cover_methods=True)
    assert [row.method for row, _ in trials[:2]] == ["bitfit", "lora"]


def test_a_configuration_missing_from_the_table_fails_the_lookup(table):
    partial = {k: v for k, v in table.items() if k != BEST_KEY}
    with pytest.raises(AutopeftError, match="not in the table"):
        replay_search(partial, SPACE, optuna.samplers.RandomSampler(seed=0), n_trials=50)


def test_first_reaching_counts_trials_or_costs():
    curve = [0.0, 0.5, 0.5, 0.96, 1.0]
    assert first_reaching(curve, 0.95) == 4
    assert first_reaching(curve, 0.95, costs=[1, 2, 1, 3, 1]) == 7
    assert math.isinf(first_reaching(curve, 1.01))


def test_asha_rule_as_ray_applies_it():
    asha = Asha(max_t=5)  # reports 1..4 (epochs 1-3, final): milestones 1, 2, 4
    assert sorted(asha.rungs) == [1, 2, 4]
    assert not asha.stops(1, 0.6, set())  # nothing recorded yet: no cutoff
    assert not asha.stops(1, 0.7, set())  # above the median of [0.6]
    assert asha.stops(1, 0.5, set())  # below the median of [0.6, 0.7]
    assert asha.rungs[1] == [0.6, 0.7, 0.5]  # a stopped trial is recorded too
    seen: set[int] = set()
    assert not asha.stops(1, 0.8, seen) and seen == {1}
    assert not asha.stops(1, 0.1, seen)  # recorded at rung 1 already: no second decision


def test_replay_asha_trains_fewer_epochs_and_keeps_only_finished_rows(table):
    early = replay_asha(table, SPACE, optuna.samplers.RandomSampler(seed=3), n_trials=50,
                        epochs=3, seed=3)
    assert sorted(r.key for r, _, _ in early) == sorted(table)
    spent = sum(t for _, t, _ in early)
    assert spent < sum(r.epochs for r in table.values())
    for row, trained, stopped in early:
        assert trained == (1.0 if stopped else row.epochs) or (stopped and trained == 2.0)
    # the optimum's curve leads from epoch 2 on, so it always finishes
    best = next((t, s) for r, t, s in early if r.key == BEST_KEY)
    assert best == (3.0, False) or best[1] is True and best[0] == 1.0
