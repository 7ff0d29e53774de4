"""Benchmark: what live progress costs a search, measured side by side with it off.

Two parts, both printed with their ratio:

* **the trial's hook**: ``Reporter.step`` (throttled, clock read per step, a message per
  second) against the no-op ``TrialProgress.step`` that a search with ``--progress off``
  calls, per step, in this process;
* **whole searches**: ``autopeft search`` (a subprocess, as a user runs it) on MiniLM +
  SST-2 from ``../shared`` with ``--progress off`` and with ``--progress plain``
  (``--progress-every 1``: the most lines), alternated ``--repeats`` times; wall time and
  the trials' stored train seconds of each.

    python scripts/bench_progress.py [--trials 2] [--repeats 1] [--max-steps 10]
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


def hook_cost(steps: int = 200_000) -> tuple[float, float]:
    """Seconds per ``step`` call: the no-op base, and a Reporter sending to a list."""
    from autopeft.runner.progress import Reporter, TrialProgress

    def per_call(progress) -> float:
        start = time.perf_counter()
        for i in range(steps):
            progress.step(i, steps)
        return (time.perf_counter() - start) / steps

    sent: list[dict] = []
    reporter = Reporter(sent.append, {"trial": 0, "method": "lora"})
    reporter.measure(lambda: (1, 2))
    return per_call(TrialProgress()), per_call(reporter)


def search(mode: str, args: argparse.Namespace, tmp: Path, run: int) -> dict[str, float]:
    shared = Path(os.environ.get("AUTOPEFT_SHARED", ROOT.parent / "shared"))
    model = shared / "models" / "all-MiniLM-L6-v2"
    if not model.is_dir():
        raise SystemExit(f"{model} not found: put ../shared beside the checkout or set "
                         "AUTOPEFT_SHARED")
    db = f"sqlite:///{tmp}/progress.db"
    study = f"{mode}-{run}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOPEFT_HOME": str(tmp / "home"),
           "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [sys.executable, "-m", "autopeft.cli.main", "search", "--task", "glue/sst2",
           "--model", str(model), "--space", "quick", "--trials", str(args.trials),
           "--epochs", "1", "--max-steps", str(args.max_steps), "--batch-size", "8",
           "--train-samples", "160", "--eval-samples", "32", "--max-length", "32",
           "--sampler", "random", "--seed", "0", "--study", study, "--storage", db,
           "--save-adapters", "none", "--progress", mode, "--progress-every", "1"]
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"search failed ({out.returncode}):\n{out.stderr[-3000:]}")
    rows = json.loads(subprocess.run(
        [sys.executable, "-m", "autopeft.cli.main", "trials", "--study", study, "--storage",
         db, "-f", "json"], env=env, capture_output=True, text=True, check=True,
        cwd=tmp).stdout)
    lines = sum(1 for ln in out.stdout.splitlines() if ln.startswith("trial "))
    return {"wall": wall, "train": sum(r.get("train_seconds") or 0 for r in rows),
            "steps": sum(r.get("steps") or 0 for r in rows), "lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=10)
    args = parser.parse_args()

    noop, reporter = hook_cost()
    print(f"per training step: no-op {noop * 1e9:.0f} ns, Reporter {reporter * 1e9:.0f} ns "
          f"(ratio {reporter / noop:.2f}; a MiniLM step takes milliseconds)")
    totals = {"off": [], "plain": []}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.repeats):
            for mode in ("off", "plain"):
                r = search(mode, args, Path(tmp), run)
                totals[mode].append(r)
                print(f"  run {run} --progress {mode:5}: wall {r['wall']:6.1f} s, train "
                      f"{r['train']:6.1f} s for {r['steps']} steps, {r['lines']} progress lines")
    wall = {m: sum(r["wall"] for r in rs) for m, rs in totals.items()}
    train = {m: sum(r["train"] for r in rs) for m, rs in totals.items()}
    print(f"search wall time  plain / off: {wall['plain']:.1f} / {wall['off']:.1f} s = "
          f"{wall['plain'] / wall['off']:.2f}")
    print(f"train seconds     plain / off: {train['plain']:.1f} / {train['off']:.1f} s = "
          f"{train['plain'] / train['off']:.2f}")


if __name__ == "__main__":
    main()
