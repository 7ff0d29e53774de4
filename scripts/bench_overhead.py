"""Benchmark: autopeft's fixed cost per trial, beside raw Ray Tune with no-op trials.

Runs ``autopeft search`` (a subprocess, as a user would) with ``--trials N`` short trials of
MiniLM on SST-2 from ``../shared`` and measures:

* **per trial**: (search wall time - the trials' stored train and eval seconds) / N, the
  issue's definition: everything a trial costs besides training and evaluating;
* **steady state**: the same between the first trial's start and the last trial's end, so
  start-up (imports, Ray, data) is left out.

In the same run it times raw Ray Tune: ``Tuner`` + ``OptunaSearch`` on a private local Ray
with N no-op trials (wall time / N), the floor any Tune-based controller pays. Both are
printed side by side with their ratio.

``--checkout DIR`` runs the search from another checkout of autopeft (e.g. a scratch worktree
of an older commit: ``git worktree add /tmp/before <commit>``), so the figures before and
after a change come from the same script:

    python scripts/bench_overhead.py [--trials 20] [--checkout /tmp/before]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def search_overhead(checkout: Path, trials: int, tmp: Path) -> dict[str, float]:
    shared = Path(os.environ.get("AUTOPEFT_SHARED", checkout.parent / "shared"))
    model = shared / "models" / "all-MiniLM-L6-v2"
    if not model.is_dir():
        raise SystemExit(f"{model} not found: put ../shared beside the checkout or set "
                         "AUTOPEFT_SHARED")
    db = f"sqlite:///{tmp}/overhead.db"
    env = {**os.environ, "PYTHONPATH": str(checkout), "AUTOPEFT_HOME": str(tmp / "home"),
           "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    args = [sys.executable, "-m", "autopeft.cli.main", "search", "--task", "glue/sst2",
            "--model", str(model), "--space", "quick", "--trials", str(trials),
            "--epochs", "1", "--max-steps", "2", "--batch-size", "8", "--train-samples", "64",
            "--eval-samples", "32", "--max-length", "32", "--sampler", "random",
            "--study", "overhead", "--storage", db, "--save-adapters", "none"]
    start = time.perf_counter()
    run = subprocess.run(args, env=env, capture_output=True, text=True, cwd=tmp)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"search failed ({run.returncode}):\n{run.stderr[-3000:]}")
    out = subprocess.run([sys.executable, "-m", "autopeft.cli.main", "trials", "--study",
                          "overhead", "--storage", db, "-f", "json"], env=env,
                         capture_output=True, text=True, check=True, cwd=tmp)
    rows = json.loads(out.stdout)
    work = sum((r.get("train_seconds") or 0) + (r.get("eval_seconds") or 0) for r in rows)
    first = min(_time(r["started_at"]) for r in rows)
    last = max(_time(r["finished_at"]) for r in rows)
    return {"trials": len(rows), "wall": wall, "work": work,
            "per_trial": (wall - work) / len(rows),
            "steady": (last - first - work) / len(rows)}


def _time(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def raw_tune(trials: int, tmp: Path) -> float:
    """Wall seconds per no-op trial of Tuner + OptunaSearch, Ray start-up included."""
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    start = time.perf_counter()
    import optuna
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def noop(config: dict) -> None:
        tune.report({"accuracy": config["x"], "trainable_params": 1.0, "peak_memory": 1.0})

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             _temp_dir=str(Path(tempfile.gettempdir()) / f"bo-{os.getpid()}"))
    try:
        search = OptunaSearch({"x": tune.uniform(0, 1)}, metric=["accuracy", "trainable_params",
                                                                 "peak_memory"],
                              mode=["max", "min", "min"])
        tune.Tuner(noop, tune_config=tune.TuneConfig(search_alg=search, num_samples=trials),
                   run_config=tune.RunConfig(storage_path=str(tmp / "ray"), verbose=0)).fit()
    finally:
        ray.shutdown()
    return (time.perf_counter() - start) / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="the autopeft checkout whose search is timed (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        search = search_overhead(args.checkout.resolve(), args.trials, tmp)
        tune_floor = raw_tune(args.trials, tmp)
    print(f"autopeft search ({args.checkout}): {search['trials']} trials in "
          f"{search['wall']:.1f} s, of which {search['work']:.1f} s train + eval")
    print(f"  fixed cost per trial:       {search['per_trial']:.2f} s (wall - work) / trials")
    print(f"  steady state per trial:     {search['steady']:.2f} s (first start to last end)")
    print(f"raw Ray Tune + OptunaSearch:  {tune_floor:.2f} s per no-op trial (Ray start incl.)")
    print(f"ratio autopeft / raw Tune:    {search['per_trial'] / tune_floor:.2f}")


if __name__ == "__main__":
    main()
