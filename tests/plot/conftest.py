"""Rows of a small study as report.trial_rows gives them, shared by the plot tests."""

from __future__ import annotations

import pytest

MiB = 2**20


def row(number, method, status, acc, params, mem_mib, **extra):
    return {"number": number, "method": method, "params": extra.pop("params", {"r": 8}),
            "learning_rate": 1e-3, "status": status, "reason": extra.pop("reason", None),
            "accuracy": acc, "trainable_params": params,
            "peak_memory_bytes": None if mem_mib is None else mem_mib * MiB, **extra}


TRIALS = [
    row(0, "lora", "completed", 0.80, 300_000, 900),
    row(1, "ia3", "completed", 0.74, 20_000, 850),
    row(2, "lora", "completed", 0.78, 300_000, 950),
    row(3, "full", "completed", 0.79, 22_000_000, 700),
    row(4, "lora", "failed", None, 300_000, None, reason="CUDA error"),
    row(5, "prefix_tuning", "infeasible", None, 10_000, 30_000,
        reason="predicted peak 29.3 GiB"),
    row(6, "lora", "oom", None, 600_000, 8000),
    row(7, "bitfit", "completed", 0.70, None, 800),  # no parameter count
    row(8, "ia3", "completed", 0.74, 20_000, 850),
    row(9, "lora", "pruned", 0.60, 150_000, 900),  # a metric, but not completed
    row(10, "full", "completed", 0.50, 0, 100),  # zero params: no place on a log axis
]
FRONT = [TRIALS[0], TRIALS[3], TRIALS[1], TRIALS[8]]


@pytest.fixture
def trials():
    return [dict(r) for r in TRIALS]


@pytest.fixture
def front():
    return [dict(r) for r in FRONT]


@pytest.fixture(name="row")
def row_fixture():
    return row
