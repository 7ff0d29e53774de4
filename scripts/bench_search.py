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
REFERENCE_TEXT = "(1, 1.1, 1.1): chance metric, 10% past the largest log-params and memory"
CHECKPOINTS = (10, 20, 50)
# GP and BoTorch take seconds per ask: fewer random startup trials than their default 10, so
# that a capped run still has model-based trials
SLOW_STARTUP = 5


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
        from optuna_integration.botorch import qnehvi_candidates_func

        # qNEHVI, as AutoPEFT uses it (the integration's default for 3 objectives is qEHVI)
        return BoTorchSampler(candidates_func=qnehvi_candidates_func, seed=seed,
                              n_startup_trials=SLOW_STARTUP)

    return {
        "random": (lambda s: optuna.samplers.RandomSampler(seed=s), False, False),
        "tpe (optuna defaults)": (lambda s: optuna.samplers.TPESampler(seed=s), False, False),
        "nsga2 (optuna defaults)": (lambda s: optuna.samplers.NSGAIISampler(seed=s), False,
                                    False),
        "nsga2 (autopeft)": (lambda s: make_sampler("nsga2", s), False, False),
        "tpe (autopeft)": (lambda s: make_sampler("tpe", s), False, False),
        "tpe (autopeft) + cover": (lambda s: make_sampler("tpe", s), True, False),
        "tpe (autopeft), 10 startup": (lambda s: optuna.samplers.TPESampler(
            seed=s, multivariate=True, group=True, constant_liar=True, n_startup_trials=10),
            False, False),
        "gp": (lambda s: optuna.samplers.GPSampler(seed=s, n_startup_trials=SLOW_STARTUP),
               False, True),
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


_STATE: dict[str, Any] = {}


def _init(table: str, space: str, setting: str) -> None:
    from autopeft.controller.replay import load_table
    from autopeft.space import load_space

    loaded = load_space(space)
    _STATE.update(rows=in_space(load_table(table)[setting], loaded), space=loaded)


def in_space(rows: dict, space: Any) -> dict:
    """The rows of the space's configurations (a table may hold more: a larger design)."""
    from autopeft.controller.searcher import config_key
    from autopeft.space import configurations

    keys = {config_key(c) for c in configurations(space)}
    return {k: r for k, r in rows.items() if k in keys}


def _run(task: tuple[str, int, int, bool]) -> list[tuple[str, float, bool]]:
    """One replayed search: (key, epochs trained, stopped early) per trial."""
    from autopeft.controller.replay import replay_asha, replay_search

    name, seed, n, asha = task
    make, cover, _ = samplers()[name]
    rows, space = _STATE["rows"], _STATE["space"]
    if asha:
        epochs = max(len(r.curve) for r in rows.values())
        return [(r.key, t, s) for r, t, s in replay_asha(
            rows, space, make(seed), n_trials=n, epochs=epochs, seed=seed, cover_methods=cover)]
    return [(r.key, r.epochs, False) for r, _ in replay_search(
        rows, space, make(seed), n_trials=n, seed=seed, cover_methods=cover)]


def bench_setting(setting: str, chance: float, args: argparse.Namespace,
                  out: Callable[[str], None]) -> None:
    from multiprocessing import get_context

    from autopeft.controller.replay import Normaliser, first_reaching, hypervolume_curve

    _init(args.table, args.space, setting)
    rows = _STATE["rows"]
    norm = Normaliser.from_rows(rows.values(), chance)
    true_hv = norm.hypervolume(rows.values())
    out(f"  {len(rows)} configurations, {sum(r.completed for r in rows.values())} completed; "
        f"chance {chance:.3f}, best {norm.best:.3f}; true hypervolume {true_hv:.4f} "
        f"(normalised units, reference {REFERENCE_TEXT})")
    picked = args.samplers.split(",") if args.samplers else None
    names = [n for n in samplers() if not picked or any(n.startswith(p) for p in picked)]
    default = next(n for n in samplers() if n.startswith("DEFAULT"))
    tasks = []
    for name in names:
        slow = samplers()[name][2]
        n = min(args.slow_trials if slow else args.trials or len(rows), len(rows))
        seeds = args.slow_seeds if slow else args.seeds
        tasks += [(name, seed, n, False) for seed in range(seeds)]
        if name in ("random", default):
            tasks += [(name, seed, len(rows), True) for seed in range(args.seeds)]
    tasks.sort(key=lambda t: not samplers()[t[0]][2])  # slow ones first: shortest makespan
    t0 = time.perf_counter()
    with get_context("fork").Pool(args.jobs, initializer=_init,
                                  initargs=(args.table, args.space, setting)) as pool:
        results = dict(zip(tasks, pool.map(_run, tasks, chunksize=1), strict=True))
    out(f"  {len(tasks)} replayed searches in {time.perf_counter() - t0:.0f} s "
        f"({args.jobs} processes)")

    def curve_of(trials: list[tuple[str, float, bool]]) -> list[float]:
        kept = [rows[k] if not stopped else dataclasses.replace(rows[k], status="stopped")
                for k, _, stopped in trials]
        return hypervolume_curve(kept, norm)

    out(f"  {'sampler':34s}{'trials to 90%':>16s}{'95%':>16s}{'99%':>16s}"
        + "".join(f"{'HV@' + str(c):>8s}" for c in CHECKPOINTS))
    reach95: dict[str, list[float]] = {}
    for name in names:
        runs = [(seed, v) for (nm, seed, _, asha), v in results.items() if nm == name and not asha]
        n = len(runs[0][1]) if runs else 0
        curves = [curve_of(v) for _, v in runs]
        reach = {f: [first_reaching(c, f * true_hv) for c in curves] for f in FRACTIONS}
        reach95[name] = reach[0.95]
        hv = "".join(
            f"{np.median([c[min(k, len(c)) - 1] / true_hv for c in curves]):8.2f}"
            if k <= max(n, 1) else f"{'-':>8s}" for k in CHECKPOINTS)
        cap = f" (cap {n}, {len(runs)} seeds)" if n < len(rows) or len(runs) != args.seeds else ""
        out(f"  {name + cap:34s}" + "".join(f"{fmt(quartiles(reach[f])):>16s}"
                                            for f in FRACTIONS) + hv)
    if "random" in reach95 and default in reach95:
        d, r = quartiles(reach95[default])[1], quartiles(reach95["random"])[1]
        out(f"  default / random, median trials to 95%: {d:g} / {r:g} = {d / r:.2f}x "
            f"(goal <= 0.25x: {'met' if d / r <= 0.25 else 'NOT met'})")

    # ASHA against full-budget trials: epochs trained until a fraction of the true volume
    for name in ("random", default):
        if name not in names:
            continue
        full = [v for (nm, _, n, asha), v in results.items()
                if nm == name and not asha and n == len(rows)]
        early = [v for (nm, _, _, asha), v in results.items() if nm == name and asha]
        if not full:
            continue
        parts = []
        for f in (0.90, 0.95):
            fe = quartiles([first_reaching(curve_of(v), f * true_hv, [e for _, e, _ in v])
                            for v in full])
            ae = quartiles([first_reaching(curve_of(v), f * true_hv, [e for _, e, _ in v])
                            for v in early])
            saving = f"{fe[1] / ae[1]:.2f}x" if math.isfinite(ae[1]) else "never reached"
            parts.append(f"{f:.0%}: full {fmt(fe)}, ASHA {fmt(ae)} -> {saving}")
        final = np.median([curve_of(v)[-1] / true_hv for v in early])
        spent = np.median([sum(e for _, e, _ in v) for v in early])
        stopped = np.median([sum(s for _, _, s in v) for v in early])
        out(f"  {name}: epochs trained to reach {'; '.join(parts)}")
        out(f"    ASHA over the whole space: {spent:g} epochs (full budget "
            f"{sum(r.epochs for r in rows.values()):g}), {stopped:g} of {len(rows)} trials "
            f"stopped, final hypervolume {final:.2f} of the true one")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=str(ROOT / "benchmarks/table_minilm.csv"))
    ap.add_argument("--space", default=str(ROOT / "benchmarks/table_minilm.yaml"))
    ap.add_argument("--settings", default=None, help="comma-separated (default: all in table)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=None,
                    help="trials per search (default: every configuration)")
    ap.add_argument("--slow-trials", type=int, default=20,
                    help="trial cap of the GP and BoTorch samplers (seconds per ask)")
    ap.add_argument("--slow-seeds", type=int, default=5, help="seeds of GP and BoTorch")
    ap.add_argument("--jobs", type=int, default=2, help="processes replaying at once")
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
        if name not in tables:
            raise SystemExit(f"setting {name!r} is not in {args.table}")
        rows = in_space(tables[name], space)
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
        bench_setting(name, chance, args, lambda s: print(s, flush=True))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
