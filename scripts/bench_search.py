"""Benchmark: search efficiency of samplers and of ASHA, replayed on a frozen table of trials.

Each search is driven through autopeft's own ``StudySearcher`` over the table's design space
(``benchmarks/table_minilm.yaml``) and answered by lookup in ``benchmarks/table_minilm.csv``
(``scripts/build_table.py``): no training, so 20 seeds of every sampler take minutes.

Objectives as ``autopeft search`` has them: dev metric (max), trainable parameters (min),
peak memory (min). Hypervolume is on normalised values: metric (best - m) / (best - chance)
with chance = the dev set's majority-class rate; log10 trainable parameters and peak memory
each scaled to the table's [min, max]; reference point (1, 1.1, 1.1) in those units, i.e.
chance accuracy and 10% beyond the largest parameter count and memory. A trial at chance
adds nothing.

Prints, per sampler over ``--seeds`` seeds: median [IQR] trials to reach 90/95/99% of the
table's true hypervolume (the hypervolume of all its rows), median fraction of it after
10/20/50 trials; then the default's ratio to random at 95%; then ASHA (autopeft's
``--scheduler asha`` rule on the per-epoch curves) against full-budget trials in epochs
trained to reach 95%.

    python scripts/bench_search.py [--table benchmarks/table_minilm.csv] [--seeds 20]
        [--samplers random,tpe,...] [--slow-trials 40]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FRACTIONS = (0.90, 0.95, 0.99)
CHECKPOINTS = (10, 20, 50)


def default_search() -> tuple[str, bool]:
    """The sampler and --cover-methods that ``autopeft search`` uses when not told."""
    from autopeft.settings import SearchSettings

    fields = {f.name: f.default for f in dataclasses.fields(SearchSettings)}
    return fields["sampler"], fields["cover_methods"]


def samplers() -> dict[str, tuple[Callable[[int], Any], bool, bool]]:
    """name -> (seed -> sampler, cover_methods, slow). ``slow`` ones get --slow-trials."""
    import optuna

    from autopeft.controller.searcher import make_sampler

    name, cover = default_search()

    def botorch(seed: int) -> Any:
        from optuna_integration import BoTorchSampler

        # default candidates_func for 3 objectives: qNEHVI (optuna_integration.botorch)
        return BoTorchSampler(seed=seed)

    return {
        "random": (lambda s: optuna.samplers.RandomSampler(seed=s), False, False),
        "tpe (optuna defaults)": (lambda s: optuna.samplers.TPESampler(seed=s), False, False),
        "nsga2 (optuna defaults)": (lambda s: optuna.samplers.NSGAIISampler(seed=s), False,
                                    False),
        "nsga2 (autopeft)": (lambda s: make_sampler("nsga2", s), False, False),
        "tpe (autopeft) + cover": (lambda s: make_sampler("tpe", s), True, False),
        "gp": (lambda s: optuna.samplers.GPSampler(seed=s), False, True),
        "botorch qNEHVI": (botorch, False, True),
        f"DEFAULT: {name}{' + cover' if cover else ''}": (lambda s: make_sampler(name, s),
                                                          cover, False),
    }


def chance_rate(task: str, train_samples: int, eval_samples: int, seed: int) -> float:
    """The dev subset's majority-class rate (what a model that learned nothing scores)."""
    from collections import Counter

    from autopeft.paths import find_shared_dir
    from autopeft.tasks import load_task

    shared = find_shared_dir()
    data = load_task(task, data_dir=str(shared / "data") if shared else None,
                     train_samples=train_samples, eval_samples=eval_samples, seed=seed)
    counts = Counter(ex.label for ex in data.eval)
    return max(counts.values()) / sum(counts.values())


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    arr = np.array(xs, dtype=float)
    if np.isinf(arr).sum() * 2 > len(arr):
        return math.inf, math.inf, math.inf
    q1, med, q3 = np.percentile(arr, [25, 50, 75], method="lower")
    return float(q1), float(med), float(q3)


def fmt(q: tuple[float, float, float]) -> str:
    def one(x: float) -> str:
        return ">max" if math.isinf(x) else f"{x:g}"

    return f"{one(q[1])} [{one(q[0])}-{one(q[2])}]"


def bench_setting(rows: dict, space: Any, chance: float, args: argparse.Namespace,
                  out: Callable[[str], None]) -> dict[str, Any]:
    from autopeft.controller.replay import (
        Normaliser,
        first_reaching,
        hypervolume_curve,
        replay_asha,
        replay_search,
    )

    norm = Normaliser.from_rows(rows.values(), chance)
    true_hv = norm.hypervolume(rows.values())
    out(f"  {len(rows)} configurations, {sum(r.completed for r in rows.values())} completed; "
        f"chance {chance:.3f}, best {norm.best:.3f}; true hypervolume {true_hv:.4f}")
    header = (f"  {'sampler':30s} {'trials to 90%':>15s} {'95%':>15s} {'99%':>15s} "
              + "".join(f"{'HV@' + str(c):>8s}" for c in CHECKPOINTS) + f" {'s/seed':>7s}")
    out(header)
    summary: dict[str, Any] = {}
    picked = args.samplers.split(",") if args.samplers else None
    for name, (make, cover, slow) in samplers().items():
        if picked and not any(name.startswith(p) for p in picked):
            continue
        n = min(args.slow_trials if slow else args.trials or len(rows), len(rows))
        reach: dict[float, list[float]] = {f: [] for f in FRACTIONS}
        at: dict[int, list[float]] = {c: [] for c in CHECKPOINTS}
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            trials = replay_search(rows, space, make(seed), n_trials=n, seed=seed,
                                   cover_methods=cover)
            curve = hypervolume_curve([r for r, _ in trials], norm)
            for f in FRACTIONS:
                reach[f].append(first_reaching(curve, f * true_hv))
            for c in CHECKPOINTS:
                at[c].append(curve[min(c, len(curve)) - 1] / true_hv if c <= n else math.nan)
        secs = (time.perf_counter() - t0) / args.seeds
        cols = "".join(f"{fmt(quartiles(reach[f])):>16s}" for f in FRACTIONS)
        hv = "".join(f"{np.nanmedian(at[c]) if not np.isnan(at[c]).all() else math.nan:8.2f}"
                     for c in CHECKPOINTS)
        out(f"  {name + (f' (cap {n})' if n < len(rows) else ''):30s}{cols}{hv} {secs:7.2f}")
        summary[name] = reach
    default = next(k for k in summary if k.startswith("DEFAULT"))
    if "random" in summary and default in summary:
        d, r = quartiles(summary[default][0.95])[1], quartiles(summary["random"][0.95])[1]
        out(f"  default / random, median trials to 95%: {d:g} / {r:g} = {d / r:.2f}x "
            f"(goal <= 0.25x: {'met' if d / r <= 0.25 else 'NOT met'})")

    # ASHA against full-budget trials: epochs trained until 95% of the true hypervolume
    epochs = max(len(r.curve) for r in rows.values())
    for name in ("random", default):
        if picked and name not in summary:
            continue
        make, cover, _ = samplers()[name]
        full, asha = [], []
        for seed in range(args.seeds):
            trials = replay_search(rows, space, make(seed), n_trials=len(rows), seed=seed,
                                   cover_methods=cover)
            plain = [r for r, _ in trials]
            full.append(first_reaching(hypervolume_curve(plain, norm), 0.95 * true_hv,
                                       [r.epochs for r in plain]))
            early = replay_asha(rows, space, make(seed), n_trials=len(rows), epochs=epochs,
                                seed=seed, cover_methods=cover)
            kept = [r if not stopped else dataclasses.replace(r, status="stopped")
                    for r, _, stopped in early]
            asha.append(first_reaching(hypervolume_curve(kept, norm), 0.95 * true_hv,
                                       [t for _, t, _ in early]))
        f_med, a_med = quartiles(full)[1], quartiles(asha)[1]
        out(f"  {name}: epochs to 95% full budget {fmt(quartiles(full))}, ASHA "
            f"{fmt(quartiles(asha))}: ASHA saves {f_med / a_med:.2f}x (goal >= 2x)")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=str(ROOT / "benchmarks/table_minilm.csv"))
    ap.add_argument("--space", default=str(ROOT / "benchmarks/table_minilm.yaml"))
    ap.add_argument("--settings", default=None, help="comma-separated (default: all in table)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=None,
                    help="trials per search (default: every configuration)")
    ap.add_argument("--slow-trials", type=int, default=40,
                    help="trial cap of the GP and BoTorch samplers (seconds per ask)")
    ap.add_argument("--samplers", default=None,
                    help="comma-separated name prefixes (default: all)")
    args = ap.parse_args()

    from autopeft.controller.replay import load_table
    from autopeft.space import count_configurations, load_space

    space = load_space(args.space)
    tables = load_table(args.table)
    names = args.settings.split(",") if args.settings else sorted(tables)
    size = count_configurations(space)
    for name in names:
        rows = tables.get(name)
        if rows is None:
            raise SystemExit(f"setting {name!r} is not in {args.table}")
        if len(rows) < size:
            print(f"{name}: {len(rows)} of {size} configurations in the table; skipped "
                  "(finish it with scripts/build_table.py)")
            continue
        import csv

        with open(args.table, newline="") as f:
            first = next(r for r in csv.DictReader(f) if r["setting"] == name)
        chance = chance_rate(first["task"], int(first["train_samples"]),
                             int(first["eval_samples"]), int(first["seed"]))
        print(f"{name} ({first['task']}, {first['train_samples']} train rows, "
              f"{first['epochs']} epochs), {args.seeds} seeds:")
        bench_setting(rows, space, chance, args, lambda s: print(s, flush=True))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
