"""Stores with studies for the server's tests: a few hand-made trials, or thousands in bulk."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

OBJECTIVES = [("accuracy", "maximize"), ("trainable_params", "minimize"),
              ("peak_memory_bytes", "minimize")]
METHODS = ("lora", "ia3", "prompt_tuning")


def _make_study(store, name: str, *, artifacts: Path | None = None, trials: int = 10,
               status: str = "finished", seed: int = 0) -> None:
    """A study of ``trials`` trials (every 5th failed), adapters saved for completed ones
    under ``artifacts`` (when given), Pareto flags set as a search sets them."""
    from autopeft.front import front_trials

    settings = {"save_adapters": "all", "sampler": "tpe", "seed": seed}
    if artifacts is not None:
        settings["artifacts_dir"] = str(artifacts)
    store.create_study(name, task="glue/rte", model="tiny-bert", space_name="quick",
                       space={"methods": {m: {} for m in METHODS}}, budget={"trials": trials},
                       hardware={}, settings=settings, objectives=OBJECTIVES)
    rng = random.Random(seed)
    for n in range(trials):
        method = METHODS[n % len(METHODS)]
        failed = n % 5 == 4
        extra = {}
        if artifacts is not None and not failed:
            folder = artifacts / f"trial-{n}"
            folder.mkdir(parents=True)
            (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
            (folder / "adapter_model.safetensors").write_bytes(bytes([n]) * 64)
            extra["adapter_path"] = str(folder)
        acc = None if failed else round(rng.uniform(0.5, 0.9), 3)
        store.add_trial(
            name, number=n, method=method, params={"r": 2 ** (n % 4)},
            learning_rate=1e-3, status="failed" if failed else "completed",
            reason="boom" if failed else None, primary_metric=acc,
            metrics={} if failed else {"accuracy": acc},
            trainable_params=None if failed else rng.randrange(1_000, 1_000_000),
            total_params=2_000_000, peak_memory_bytes=None if failed else rng.randrange(
                10**8, 10**9), train_seconds=1.5, extra=extra)
    store.set_pareto(name, [t.number for t in front_trials(store, name)])
    store.set_study_status(name, status, finished=status != "running")


def _bulk_study(store, name: str, n: int, *, seed: int = 0) -> None:
    """A study of ``n`` trials written in one multi-row INSERT per 5,000 (seconds, not
    minutes): the bulk path scripts/bench_store.py uses."""
    from sqlalchemy import create_engine, insert
    from sqlalchemy.pool import NullPool

    from autopeft.store.models import TrialRow

    study = store.create_study(name, task="glue/rte", model="tiny-bert", space_name="quick",
                               space={"methods": {m: {} for m in METHODS}},
                               budget={"trials": n}, hardware={}, settings={},
                               objectives=OBJECTIVES)
    rng = random.Random(seed)
    statuses = ["completed"] * 8 + ["failed", "oom"]
    rows = []
    for i in range(n):
        status = statuses[rng.randrange(len(statuses))]
        done = status == "completed"
        acc = round(rng.uniform(0.5, 0.9), 3) if done else None
        params = rng.randrange(1_000, 10_000_000) if done else None
        rows.append({"study_id": study.id, "number": i, "method": METHODS[i % len(METHODS)],
                     "params": {"r": 8}, "learning_rate": 1e-3, "status": status,
                     "primary_metric": acc, "metrics": {"accuracy": acc} if done else {},
                     "trainable_params": params, "total_params": 20_000_000,
                     "peak_memory_bytes": 5 * 10**8 + 16 * params if done else None,
                     "is_pareto": False, "extra": {}})
    engine = create_engine(store.url, poolclass=NullPool)
    with engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(insert(TrialRow.__table__), rows[start:start + 5000])
    engine.dispose()


@pytest.fixture
def store(store_url):
    from autopeft.store import Store

    with Store(store_url) as s:
        yield s


@pytest.fixture(name="make_study")
def make_study_fixture():
    """``make_study(store, name, artifacts=None, trials=10, status="finished", seed=0)``."""
    return _make_study


@pytest.fixture(name="bulk_study")
def bulk_study_fixture():
    """``bulk_study(store, name, n, seed=0)``: ``n`` trials in bulk."""
    return _bulk_study
