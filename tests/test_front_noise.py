"""The front within noise: resolutions, seed means of confirmed points, ties, rendering."""

from __future__ import annotations

import json
import math
import statistics
from types import SimpleNamespace

import pytest

from autopeft.front import (
    MEMORY_NOISE_BYTES,
    front_trials,
    memory_meter,
    metric_standard_error,
    pareto_trials,
)
from autopeft.report import front_rows, render, resolution_caption
from autopeft.store import Store

MiB = 2**20
OBJECTIVES = [("accuracy", "maximize"), ("trainable_params", "minimize"),
              ("peak_memory", "minimize")]


def trial(number, acc, params, mem_mib, *, n=500, kind="cpu_weights_plus_rss_growth",
          status="completed", **extra):
    return SimpleNamespace(number=number, status=status, primary_metric=acc, metrics={},
                           trainable_params=params, peak_memory_bytes=round(mem_mib * MiB),
                           eval_examples=n, memory_kind=kind, extra=extra)


def test_metric_standard_error():
    # binomial (Agresti-Coull centre) for accuracy: ~0.019 at 0.77 on 500 examples
    assert metric_standard_error("accuracy", 0.772, 500) == pytest.approx(0.01875, abs=2e-4)
    assert metric_standard_error("accuracy", 1.0, 100) > 0  # never exact from a sample
    assert metric_standard_error("accuracy", 0.8, 500, stored=0.03) == 0.03  # bootstrap wins
    assert metric_standard_error("f1", 0.8, 400) == pytest.approx(0.5 / 20)
    assert metric_standard_error("matthews_correlation", 0.4, 400) == pytest.approx(1 / 20)
    assert metric_standard_error("accuracy", 0.8, None) == 0.0  # nothing known


def test_memory_meter_of_old_and_new_rows():
    assert memory_meter("cpu_weights_plus_rss_growth", None) == "cpu_rss"
    assert memory_meter("cuda_max_allocated", None) == "cuda_allocated"
    assert memory_meter("cpu_weights_plus_rss_growth", "cpu_tensors") == "cpu_tensors"
    assert memory_meter("predicted", None) is None
    assert MEMORY_NOISE_BYTES["cpu_tensors"] == 0 and MEMORY_NOISE_BYTES["cpu_rss"] > 0


def test_readme_demo_pair_with_the_measured_resolutions():
    """README's demo: two ln_tuning points, same size, 0.772 at 793 MiB and 0.754 at 768 MiB
    on 500 dev examples. 0.018 is inside the accuracy's noise (SE ~0.019) while 25 MiB is
    beyond the RSS meter's (18 MiB): the cheaper one dominates, one ln_tuning point stays."""
    trials = [trial(0, 0.772, 9_984, 793), trial(1, 0.754, 9_984, 768),
              trial(2, 0.85, 300_000, 900)]
    exact = pareto_trials([SimpleNamespace(**{**vars(t), "eval_examples": None,
                                              "memory_kind": None}) for t in trials],
                          OBJECTIVES)
    assert [t.number for t in exact] == [2, 0, 1]  # one seed, no noise: both on the front
    front = pareto_trials(trials, OBJECTIVES)
    assert [t.number for t in front] == [2, 1]
    # with the exact tensor meter the 25 MiB are real as well: same verdict
    tensors = [SimpleNamespace(**{**vars(t), "extra": {"peak_memory_meter": "cpu_tensors"}})
               for t in trials]
    assert [t.number for t in pareto_trials(tensors, OBJECTIVES)] == [2, 1]
    # 10 MiB apart on the RSS meter: not told apart, both stay, marked as tied
    close = [trial(0, 0.772, 9_984, 778), trial(1, 0.754, 9_984, 768)]
    tied = pareto_trials(close, OBJECTIVES)
    assert [(t.number, t.tied_with) for t in tied] == [(0, (1,)), (1, (0,))]
    assert tied[0].resolution["peak_memory"] == 18 * MiB


def test_confirmed_point_is_ranked_by_its_mean_and_can_leave_the_front():
    trials = [trial(0, 0.80, 100, 500, seed=0), trial(1, 0.78, 50, 500, seed=0),
              # repeats of 0: its first seed was lucky
              trial(2, 0.70, 100, 520, confirms=0, seed=1),
              trial(3, 0.72, 100, 510, confirms=0, seed=2),
              trial(4, 0.99, 100, 500, confirms=0, seed=3, status="failed")]
    assert [t.number for t in pareto_trials(trials[:2], OBJECTIVES)] == [0, 1]
    front = pareto_trials(trials, OBJECTIVES)
    assert [t.number for t in front] == [1]  # 0's mean (0.74) falls off; repeats never rank
    only0 = pareto_trials([trials[0], *trials[2:]], OBJECTIVES)
    (point,) = only0
    assert point.seeds == 3 and point.repeats == (2, 3)
    assert point.primary_metric == pytest.approx(statistics.mean([0.80, 0.70, 0.72]))
    assert point.metric_std == pytest.approx(statistics.stdev([0.80, 0.70, 0.72]))
    assert point.peak_memory_bytes == round(statistics.mean([500, 520, 510]) * MiB)
    # its resolution: the seeds' spread of the mean beats the dev-set SE; memory noise / sqrt 3
    assert point.resolution["accuracy"] == pytest.approx(point.metric_std / math.sqrt(3))
    assert point.resolution["peak_memory"] == pytest.approx(18 * MiB / math.sqrt(3))
    orphan = pareto_trials([trial(5, 0.9, 1, 1, confirms=99, seed=1)], OBJECTIVES)
    assert orphan == []  # a repeat whose original is not ranked is not ranked either


@pytest.fixture
def store(store_url):
    with Store(store_url) as s:
        s.create_study("n", task="glue/sst2", model="m", space_name="s", space={}, budget={},
                       hardware={}, settings={}, objectives=OBJECTIVES)
        yield s


def _add(store, t):
    store.add_trial("n", number=t.number, method="lora", params={"r": 8}, learning_rate=1e-3,
                    status=t.status, primary_metric=t.primary_metric,
                    metrics={"accuracy": t.primary_metric, **t.metrics},
                    trainable_params=t.trainable_params, peak_memory_bytes=t.peak_memory_bytes,
                    memory_kind=t.memory_kind, eval_examples=t.eval_examples, extra=t.extra)


def test_store_front_equals_pareto_trials_and_renders_its_keys(store):
    rows = [trial(0, 0.80, 100, 500, seed=0), trial(1, 0.78, 50, 505, seed=0),
            trial(2, 0.79, 100, 520, confirms=0, seed=1),
            trial(3, 0.81, 100, 510, confirms=0, seed=2),
            trial(4, 0.60, 10, 400, n=None, kind=None),
            trial(5, 0.70, 30, 501)]
    rows[5].metrics = {"accuracy_se": 0.002}  # a stored bootstrap SE wins over the binomial
    for t in rows:
        _add(store, t)
    fast = front_trials(store, "n")
    assert fast == pareto_trials(store.trials("n"), OBJECTIVES)
    by = {p.number: p for p in fast}
    assert set(by) == {0, 1, 4, 5}
    assert by[0].seeds == 3 and by[1].seeds == 1 and by[1].metric_std is None
    assert by[5].resolution["accuracy"] == 0.002
    assert by[4].resolution == {"accuracy": 0.0, "trainable_params": 0.0, "peak_memory": 0.0}
    table = front_rows(fast, detailed=False, primary="accuracy")
    assert table.columns[table.columns.index("accuracy") + 1:][:3] == [
        "seeds", "metric_std", "tied_with"]
    data = json.loads(render(front_rows(fast, detailed=True, primary="accuracy"), "json"))
    assert {(d["number"], d["seeds"]) for d in data} == {(0, 3), (1, 1), (4, 1), (5, 1)}
    assert all(isinstance(d["tied_with"], list) and "resolution" in d for d in data)
    caption = resolution_caption(fast, OBJECTIVES)
    assert "accuracy ±" in caption and "trainable_params exact" in caption
    assert "peak_memory ±" in caption and "MiB" in caption
    text = render(table, "table", caption=caption, width=250)
    assert "Within noise" in text and "±0.0" in text
