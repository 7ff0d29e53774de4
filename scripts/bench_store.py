"""Latency of ``autopeft front`` on 100,000 stored trials, SQLite and PostgreSQL side by side.

For each backend a fresh store (a temporary SQLite file; a PostgreSQL database created here
and dropped afterwards) gets one study of ``--trials`` synthetic trials, inserted with
SQLAlchemy core ``insert`` executemany in batches. Then :func:`autopeft.front.front_trials`
— what ``autopeft front --study S`` computes: the Pareto front recomputed from the completed
trials, as full records — is timed ``--runs`` times on an open Store after one warm-up run.
The goal is under 100 ms per call on each backend. The old path (every completed trial as
an ORM object, then ``pareto_trials``) is timed once for comparison and must give the same
front.

    python scripts/bench_store.py [--trials 100000] [--runs 10] [--skip-postgres]

The PostgreSQL server is ``$AUTOPEFT_TEST_POSTGRES_URL`` (default: the local trust-auth one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autopeft.front import front_trials, pareto_trials  # noqa: E402
from autopeft.store import Store  # noqa: E402
from autopeft.store.models import TrialRow  # noqa: E402

GOAL_MS = 100.0
STUDY = "bench"
OBJECTIVES = [("accuracy", "maximize"), ("trainable_params", "minimize"),
              ("peak_memory_bytes", "minimize")]
ADMIN_URL = os.environ.get(
    "AUTOPEFT_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
# method: (log10 of trainable params low, high) on a 22.7M-parameter encoder
METHODS = {"lora": (4.5, 6.0), "ia3": (3.5, 4.5), "prefix_tuning": (4.0, 5.5),
           "prompt_tuning": (3.0, 4.5), "ln_tuning": (3.5, 4.0), "bitfit": (4.5, 5.0),
           "full": (7.3, 7.4)}
STATUSES = {"completed": 0.9, "failed": 0.03, "oom": 0.02, "timeout": 0.02, "diverged": 0.02,
            "not_applicable": 0.01}


def synthetic_trials(study_id: int, n: int, seed: int = 0) -> list[dict]:
    """``n`` rows of ``autopeft_trials`` shaped like a real search (params, metrics, extra).

    Accuracy grows with the trainable parameters (plus noise) and memory with both, so the
    objectives conflict as in a real study and the front stays small.
    """
    rng = np.random.default_rng(seed)
    names = list(METHODS)
    method = rng.integers(0, len(names), n)
    lo, hi = np.array([METHODS[m] for m in names]).T
    trainable = np.round(10 ** rng.uniform(lo[method], hi[method])).astype(np.int64)
    accuracy = np.clip(0.55 + 0.04 * np.log10(trainable) + rng.normal(0, 0.05, n), 0, 1)
    memory = (6e8 + 16 * trainable + rng.normal(0, 3e7, n)).astype(np.int64)
    status = rng.choice(list(STATUSES), n, p=list(STATUSES.values()))
    lr = 10 ** rng.uniform(-5, -2, n)
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(n):
        done = status[i] == "completed"
        acc = float(accuracy[i]) if done else None
        start = t0 + timedelta(seconds=60 * i)
        rows.append({
            "study_id": study_id, "number": i, "method": names[method[i]],
            "params": {"r": int(2 ** (2 + i % 4)), "targets": ["q", "v"], "layers": "all"},
            "learning_rate": float(lr[i]), "status": str(status[i]),
            "reason": None if done else f"{status[i]}: synthetic",
            "primary_metric": acc, "metrics": {"accuracy": acc, "eval_loss": 0.5} if done else {},
            "trainable_params": int(trainable[i]), "total_params": 22_700_000,
            "peak_memory_bytes": int(memory[i]) if done else None,
            "memory_kind": "cpu_peak_rss_delta", "train_seconds": 30.0 + i % 50,
            "eval_seconds": 3.0, "examples_per_second": 120.0, "steps": 200,
            "started_at": start, "finished_at": start + timedelta(seconds=40),
            "is_pareto": False,
            "extra": {"ray_trial_id": f"t{i:06d}", "device": "cpu", "node_ip": "10.0.0.2"},
        })
    return rows


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run; dropped afterwards (sessions terminated)."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool,
                          connect_args={"connect_timeout": 5})
    name = f"autopeft_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


def fill(store: Store, n: int, batch: int = 5000) -> float:
    """Create the study and bulk-insert ``n`` trials; returns the seconds it took."""
    t0 = time.perf_counter()
    study = store.create_study(STUDY, task="glue/sst2", model="all-MiniLM-L6-v2",
                               space_name="default", space={}, budget={}, hardware={},
                               settings={}, objectives=OBJECTIVES)
    rows = synthetic_trials(study.id, n)
    engine = create_engine(store.url, poolclass=NullPool)
    with engine.begin() as conn:
        for start in range(0, n, batch):
            conn.execute(insert(TrialRow.__table__), rows[start : start + batch])
    # What autovacuum does after a bulk load: planner statistics for the new rows.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - t0


def bench(backend: str, url: str, n: int, runs: int, baseline: bool) -> dict:
    with Store(url) as store:
        fill_s = fill(store, n)
        front = front_trials(store, STUDY)  # warm-up: connection pool, statement caches
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            got = front_trials(store, STUDY)
            times.append(1000 * (time.perf_counter() - t0))
            assert [t.number for t in got] == [t.number for t in front]
        out = {"backend": backend, "fill_s": fill_s, "front": len(front),
               "median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
               "orm_ms": None, "same": None}
        if baseline:
            t0 = time.perf_counter()
            slow = pareto_trials(store.trials(STUDY, status="completed"), OBJECTIVES)
            out["orm_ms"] = 1000 * (time.perf_counter() - t0)
            out["same"] = [t.number for t in slow] == [t.number for t in front]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--no-baseline", action="store_true",
                        help="do not time the old ORM path (a few seconds per backend)")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="autopeft-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        results.append(bench("sqlite", url, args.trials, args.runs, not args.no_baseline))
    if not args.skip_postgres:
        with postgres_database() as url:
            results.append(bench("postgresql", url, args.trials, args.runs,
                                 not args.no_baseline))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"autopeft front on {args.trials:,} trials (one study, ~90% completed), "
          f"{args.runs} runs after a warm-up; goal < {GOAL_MS:.0f} ms "
          f"(load average {load} on {os.cpu_count()} CPUs)")
    header = (f"{'backend':<11} {'fill s':>7} {'front':>6} {'median ms':>10} {'p95 ms':>8} "
              f"{'p95/goal':>9} {'ORM path ms':>12} {'same front':>11}")
    print(header)
    ok = True
    for r in results:
        orm = "-" if r["orm_ms"] is None else f"{r['orm_ms']:.0f}"
        same = "-" if r["same"] is None else ("yes" if r["same"] else "NO")
        print(f"{r['backend']:<11} {r['fill_s']:>7.1f} {r['front']:>6} {r['median_ms']:>10.1f} "
              f"{r['p95_ms']:>8.1f} {r['p95_ms'] / GOAL_MS:>8.2f}x {orm:>12} {same:>11}")
        ok = ok and r["p95_ms"] < GOAL_MS and r["same"] is not False
    print("goal met" if ok else "goal NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
