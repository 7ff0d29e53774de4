"""The front's rules (autopeft/front.py): pure functions over trial-like objects."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from autopeft.front import objective_value, pareto_trials


def trial(number, primary, status="completed", **kw):
    base = {"number": number, "primary_metric": primary, "status": status, "metrics": {},
            "trainable_params": 100, "peak_memory_bytes": 1000}
    return SimpleNamespace(**{**base, **kw})


def test_objective_values_come_from_attributes_then_metrics():
    t = trial(0, 0.8, metrics={"f1": 0.7, "peak_memory": 5}, peak_memory_bytes=None)
    assert objective_value(t, "anything", 0) == 0.8  # the first objective is the primary
    assert objective_value(t, "trainable_params", 1) == 100.0
    assert objective_value(t, "f1", 1) == 0.7
    assert objective_value(t, "peak_memory", 2) == 5.0  # NULL column: metrics' value
    assert objective_value(trial(1, float("nan")), "acc", 0) is None
    assert objective_value(trial(1, 0.5, trainable_params=True), "trainable_params", 1) is None


def test_front_keeps_completed_non_dominated_trials_best_primary_first():
    trials = [
        trial(0, 0.70, trainable_params=10),
        trial(1, 0.90, trainable_params=50),
        trial(2, 0.80, trainable_params=60),  # dominated by 1
        trial(3, 0.99, status="failed", trainable_params=1),
        trial(4, 0.90, trainable_params=50),  # identical to 1: both kept, by number
    ]
    objectives = [("acc", "maximize"), ("trainable_params", "minimize")]
    assert [t.number for t in pareto_trials(trials, objectives)] == [1, 4, 0]
    loss = [("loss", "minimize"), ("trainable_params", "minimize")]
    assert [t.number for t in pareto_trials(trials, loss)] == [0]  # 0.70 with 10 wins both


def test_front_rules_import_no_sql_and_no_rendering():
    code = ("import sys, autopeft.front; "
            "bad = [m for m in ('sqlalchemy', 'rich', 'torch') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numeric_attributes_are_the_numeric_columns():
    from sqlalchemy import BigInteger, Float, Integer

    from autopeft.front import NUMERIC_ATTRIBUTES
    from autopeft.store.models import TrialRow

    columns = [c.name for c in TrialRow.__table__.c
               if isinstance(c.type, (Integer, Float, BigInteger))
               and c.name not in ("id", "study_id", "number")]
    assert sorted(NUMERIC_ATTRIBUTES) == sorted(columns)
