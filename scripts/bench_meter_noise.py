"""Run-to-run noise of the peak-memory meter: one configuration trained several times.

The Pareto front treats two peaks closer than the meter's noise as equal (``autopeft
front``'s memory resolution, :data:`autopeft.front.MEMORY_NOISE_BYTES`). This measures that
noise: the same trial (same config, seed and data) is run ``--runs`` times, each in a fresh
Python process (as a cold Ray worker would) and then ``--runs`` times one after the other in
one process (as a warm worker does), and the peak each run reports is printed with the
standard deviation and the spread (max - min) of each series, in MiB. Defaults follow
README's CPU demo (MiniLM, SST-2, batch 32, 128 tokens) on a smaller subsample.

    python scripts/bench_meter_noise.py [--method ln_tuning] [--runs 5] [--train-samples 256]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from autopeft.paths import find_shared_dir


def trial_config(args: argparse.Namespace):
    from autopeft.runner.config import TrialConfig

    shared = find_shared_dir()
    return TrialConfig(task="glue/sst2", model=str(shared / "models" / "all-MiniLM-L6-v2"),
                       method=args.method, params={}, learning_rate=1e-3, epochs=1,
                       batch_size=32, max_length=128, seed=0, threads=args.threads,
                       data_dir=str(shared / "data"), train_samples=args.train_samples,
                       eval_samples=args.eval_samples)


def one_run(args: argparse.Namespace) -> dict:
    from autopeft.runner.trial import run_trial

    result = run_trial(trial_config(args))
    return {"peak": result.peak_memory_bytes, "kind": result.memory_kind,
            "status": str(result.status), "accuracy": result.primary_metric}


def summary(label: str, runs: list[dict]) -> None:
    peaks = [r["peak"] / 2**20 for r in runs]
    kinds = sorted({r["kind"] for r in runs})
    print(f"{label}: peaks MiB {', '.join(f'{p:.1f}' for p in peaks)} ({', '.join(kinds)})")
    if len(peaks) > 1:
        print(f"{label}: mean {statistics.mean(peaks):.1f} MiB, std {statistics.stdev(peaks):.2f}"
              f" MiB, spread (max-min) {max(peaks) - min(peaks):.2f} MiB over {len(peaks)} runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="ln_tuning")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--train-samples", type=int, default=256)
    parser.add_argument("--eval-samples", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args)))
        return
    fresh = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, __file__, "--child", "--method", args.method,
                              "--train-samples", str(args.train_samples), "--eval-samples",
                              str(args.eval_samples), "--threads", str(args.threads)],
                             check=True, capture_output=True, text=True).stdout
        fresh.append(json.loads(out.strip().splitlines()[-1]))
        print("fresh process:", fresh[-1], flush=True)
    warm = []
    for _ in range(args.runs):
        warm.append(one_run(args))
        print("warm process:", warm[-1], flush=True)
    print(f"{args.method} on MiniLM/SST-2, {args.train_samples} train / {args.eval_samples} dev "
          "examples, batch 32, 128 tokens, 1 epoch")
    summary("fresh processes", fresh)
    summary("one warm process", warm)


if __name__ == "__main__":
    main()
