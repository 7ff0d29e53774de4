"""The fast front (autopeft.store.query) equals pareto_trials over every completed trial."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.pool import NullPool

from autopeft.front import front_trials, pareto_trials
from autopeft.pareto import pareto_mask
from autopeft.store import Store
from autopeft.store import query as query_module
from autopeft.store.models import TrialRow
from autopeft.store.query import Objective, _best_pivots, _prune

DEFAULT = [("accuracy", "maximize"), ("trainable_params", "minimize"), ("peak_memory", "minimize")]
STATUSES = ["completed"] * 8 + ["failed", "oom"]


def _study(store: Store, name: str, objectives) -> int:
    return store.create_study(name, task="rte", model="m", space_name="s", space={}, budget={},
                              hardware={}, settings={}, objectives=objectives).id


def _fill(url: str, study_id: int, n: int, seed: int) -> None:
    """``n`` trials with ties, duplicates, NULL columns (some backed by metrics), metrics of
    every JSON type, and failed trials that would dominate everything if ranked."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        status = STATUSES[rng.integers(len(STATUSES))]
        acc = round(float(rng.uniform(0.5, 0.9)), 3)  # rounded: many ties
        params = int(10 ** rng.uniform(3, 7)) // 100 * 100
        mem = int(5e8 + params * 16 + rng.integers(0, 5) * 1e7)
        metrics = {"accuracy": acc, "f1": round(float(rng.uniform()), 2), "flag": True}
        if i % 17 == 0:  # column NULL, value only in metrics (objective_value falls back)
            metrics["trainable_params"], params = params, None
        if i % 23 == 0:
            metrics["f1"] = ["not", "a", "number"] if i % 2 else True
        if i % 31 == 0:
            mem = None  # unknown: never ranked
        if status != "completed":
            acc, params, mem = 0.99, 1, 1
        rows.append({"study_id": study_id, "number": i, "method": "lora", "params": {"r": 8},
                     "learning_rate": 1e-3, "status": status, "primary_metric": acc,
                     "metrics": metrics, "trainable_params": params, "peak_memory_bytes": mem,
                     "is_pareto": bool(i % 5 == 0), "extra": {"i": i}})
    rows.append({**rows[-1], "number": n})  # an exact duplicate point
    _insert(url, rows)


def _insert(url: str, rows: list[dict]) -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(insert(TrialRow.__table__), rows)
    engine.dispose()


@pytest.fixture
def store(store_url):
    with Store(store_url) as s:
        yield s


def test_large_study_front_is_exact_and_filtered_in_the_database(store, store_url, monkeypatch):
    sid = _study(store, "big", DEFAULT)
    _fill(store_url, sid, 6000, seed=1)
    # Many copies of every front trial: the sampled pivots are then front points, whose
    # copies must all stay on the front (a point does not dominate its equal).
    keep = ("study_id", "method", "params", "status", "primary_metric", "metrics",
            "trainable_params", "peak_memory_bytes")
    front = pareto_trials(store.trials("big"), DEFAULT)
    copies = [{**{c: getattr(t, c) for c in keep}, "number": 10_000 + 1000 * i + j}
              for i, t in enumerate(front) for j in range(150)]
    _insert(store_url, copies)
    returned = []
    real = query_module.objective_matrix

    def spy(*args, **kwargs):
        numbers, values = real(*args, **kwargs)
        returned.append(len(numbers))
        return numbers, values

    monkeypatch.setattr(query_module, "objective_matrix", spy)
    fast = front_trials(store, "big")
    slow = pareto_trials(store.trials("big", status="completed"), DEFAULT)
    assert fast == slow  # same records (is_pareto flags included), same order
    assert len(fast) >= 3 * 151
    assert any(t.trainable_params is None for t in store.trials("big", status="completed"))
    # The front within noise reads every completed trial's values once: a pivot cannot drop
    # rows before their resolutions and seed means are known (epsilon-dominance is not
    # transitive). The pivot filter stays in use by Store.front (the exact front).
    completed = len(store.trials("big", status="completed"))
    assert returned == [completed]
    with store._read() as session:
        sid = store.require_study("big").id
        exact = query_module.front_records(session, sid, "big", [
            Objective("maximize", "primary_metric"), Objective("minimize", "trainable_params",
                                                               "trainable_params"),
            Objective("minimize", "peak_memory_bytes", "peak_memory")])
    assert [t.number for t in exact] == [t.number for t in fast]  # no resolutions here


@pytest.mark.parametrize("objectives", [
    [("accuracy", "maximize"), ("f1", "maximize"), ("peak_memory", "minimize")],
    [("loss", "minimize"), ("flag", "minimize")],  # booleans are never values
    [("accuracy", "maximize"), ("trainable_params", "minimize"), ("f1", "minimize"),
     ("peak_memory_bytes", "minimize")],
])
def test_metric_objectives_match_pareto_trials(store, store_url, objectives):
    sid = _study(store, "metrics", objectives)
    _fill(store_url, sid, 4500, seed=2)
    fast = front_trials(store, "metrics")
    assert fast == pareto_trials(store.trials("metrics", status="completed"), objectives)
    if objectives[1][0] == "flag":
        assert fast == []
    else:
        assert fast


def test_small_studies_and_directions(store):
    _study(store, "small", [("loss", "minimize"), ("trainable_params", "minimize")])
    assert front_trials(store, "small") == []
    for number, (loss, params, status) in enumerate(
        [(0.3, 100, "completed"), (0.2, 200, "completed"), (0.2, 200, "completed"),
         (0.25, 300, "completed"), (0.1, 50, "failed"), (None, 10, "completed")]
    ):
        store.add_trial("small", number=number, method="lora", params={}, learning_rate=None,
                        status=status, primary_metric=loss, trainable_params=params)
    front = front_trials(store, "small")
    assert [t.number for t in front] == [1, 2, 0]  # lowest loss first, ties by number
    assert front == pareto_trials(store.trials("small"), [("loss", "min"), ("trainable_params",
                                                                            "min")])
    with store._read() as session:  # a column that is not a number is never a value
        sid = store.require_study("small").id
        assert query_module.front_records(
            session, sid, "small", [Objective("minimize", "primary_metric"),
                                    Objective("minimize", "method")]) == []


def test_objective_is_checked():
    with pytest.raises(ValueError, match="direction"):
        Objective("up", "primary_metric")
    with pytest.raises(ValueError, match="no column"):
        Objective("minimize", "nope")
    with pytest.raises(ValueError, match="column, a metric"):
        Objective("minimize")


@pytest.mark.parametrize("k", [3, 4])
def test_pivot_pruning_keeps_the_exact_front(k):
    rng = np.random.default_rng(k)
    pts = np.round(rng.normal(size=(20_000, k)), 2)  # ties and duplicates
    pts[:50] = pts[50]
    expected = np.flatnonzero(pareto_mask(pts, ["minimize"] * k))
    pivots = _best_pivots(pts[rng.choice(len(pts), 960, replace=False)])
    for given in (pivots, np.empty((0, k))):
        kept = _prune(pts, given)
        assert len(kept) < len(pts) // 2
        front = kept[pareto_mask(pts[kept], ["minimize"] * k)]
        np.testing.assert_array_equal(np.sort(front), expected)
