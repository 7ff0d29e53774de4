"""Build (or extend) the frozen tabular benchmark: real MiniLM trials, one CSV row each.

Every configuration of the design space ``benchmarks/table_minilm.yaml`` (method x size x
placement x learning rate) is trained in this process through autopeft's own runner
(``run_trial`` with warm base-model copies, no Ray), on each data setting below, and one row
is appended as soon as it finishes: the dev metric after every epoch (the runner's per-epoch
``report`` hook, then the final evaluation), trainable parameters, predicted and measured
peak memory, and time. Rows already in the table (same setting and configuration) are
skipped, so an interrupted build resumes and a build with a larger design extends the table.
Settings run in turn, each in one fixed shuffled order of its configurations, so the rows of
a build stopped early are a random, balanced part of the design (and the first setting is
complete first).

Provenance (versions, seed, hardware, command, start and end of each build) goes to a JSON
file beside the table; ``scripts/bench_search.py`` replays searches over the table.

    python scripts/build_table.py [--out benchmarks/table_minilm.csv] [--settings sst2-256,sst2-128]
        [--limit N] [--threads 1]

Several builds started at once share the work (claim files), for machines with spare cores.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import fcntl
import json
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPACE = ROOT / "benchmarks" / "table_minilm.yaml"
DEFAULT_OUT = ROOT / "benchmarks" / "table_minilm.csv"
SEED = 0
ORDER_SEED = 20261202


@dataclass(frozen=True)
class Setting:
    """One data setting: a task, its sizes and the per-trial budget (same for every row)."""

    name: str
    task: str
    train_samples: int
    eval_samples: int = 128
    epochs: int = 4
    batch_size: int = 16
    max_length: int = 64


# Sized for a 2-core machine shared with other work (one torch thread per trial): 96
# configurations on each setting, 4 epochs of 8 steps at 128 rows. Two train sizes of SST-2:
# RTE stays at chance on MiniLM (shared/README.md), a front of one point with nothing to
# search for.
SETTINGS = {
    s.name: s for s in (
        Setting("sst2-128", "glue/sst2", train_samples=128),
        Setting("sst2-64", "glue/sst2", train_samples=64),
    )
}


def existing_keys(path: Path) -> set[tuple[str, str]]:
    if not path.exists():
        return set()
    with path.open(newline="") as f:
        return {(r["setting"], r["key"]) for r in csv.DictReader(f)}


def design(space: Any, settings: list[Setting]) -> list[tuple[Setting, dict]]:
    """Every (setting, configuration): settings in turn, each in one fixed shuffled order."""
    from autopeft.space import configurations

    work = []
    for s in settings:
        configs = list(configurations(space))
        random.Random(ORDER_SEED).shuffle(configs)
        work += [(s, c) for c in configs]
    return work


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(args: argparse.Namespace, settings: list[Setting]) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "peft": peft.__version__},
        "hardware": {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": args.threads,
                     "device": "cpu",
                     # a shared machine: the time columns are only comparable within a build
                     "load_average_at_start": [round(x, 1) for x in os.getloadavg()]},
        "seed": SEED,
        "model": str(args.model),
        "space": str(Path(args.space).resolve().relative_to(ROOT))
        if Path(args.space).resolve().is_relative_to(ROOT) else str(args.space),
        "settings": [s.__dict__ for s in settings],
    }


def write_provenance(path: Path, run: dict[str, Any]) -> None:
    """Add this build (one entry per worker) to the provenance file, or update its entry."""
    with path.open("a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # workers of one build share the file
        f.seek(0)
        text = f.read()
        data = json.loads(text) if text.strip() else {"builds": []}
        same = (run["started"], run["command"])
        builds = [b for b in data["builds"] if (b.get("started"), b.get("command")) != same]
        data["builds"] = [*builds, run]
        f.seek(0)
        f.truncate()
        f.write(json.dumps(data, indent=2) + "\n")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_UN)


class Predictor:
    """Predicted peak memory per (method, params, sequence length), computed once each."""

    def __init__(self, model_path: str) -> None:
        from transformers import AutoConfig

        self.config = AutoConfig.from_pretrained(model_path)
        self.cache: dict[str, int | None] = {}

    def __call__(self, method: str, params: dict, setting: Setting, seq_len: int) -> int | None:
        from autopeft.errors import AutopeftError
        from autopeft.memory.predict import predict_peak_memory

        key = json.dumps([method, params, setting.batch_size, seq_len], sort_keys=True)
        if key not in self.cache:
            try:
                pred = predict_peak_memory(self.config, method, params,
                                           batch_size=setting.batch_size, seq_len=seq_len,
                                           device="cpu")
                self.cache[key] = int(pred.total_bytes)
            except AutopeftError:
                self.cache[key] = None
        return self.cache[key]


class Claims:
    """Several builds at once share the work: each configuration is claimed by creating a
    file (``O_EXCL``: one winner) in a folder beside the table, and a build skips the claimed
    ones. Delete ``<table>.claims/`` when no build runs, to retry those of a killed build."""

    def __init__(self, table: Path) -> None:
        self.folder = table.with_name(table.name + ".claims")
        self.folder.mkdir(exist_ok=True)

    def claim(self, setting: str, key: str) -> bool:
        import hashlib

        name = hashlib.sha256(f"{setting} {key}".encode()).hexdigest()[:20]
        try:
            os.close(os.open(self.folder / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True


def run_one(setting: Setting, config: dict, space: Any, data: Any, args: argparse.Namespace,
            predictor: Predictor) -> dict[str, Any]:
    from autopeft.controller.searcher import config_key
    from autopeft.runner.config import TrialConfig
    from autopeft.runner.trial import run_trial
    from autopeft.space import decode_config

    sampled = decode_config(space, config)
    cfg = TrialConfig(
        task=setting.task, model=str(args.model), method=sampled.method,
        params=sampled.params, learning_rate=sampled.learning_rate, epochs=setting.epochs,
        batch_size=setting.batch_size, max_length=setting.max_length, seed=SEED,
        threads=args.threads, precision="fp32",
    )
    curve: list[float] = []
    start = time.perf_counter()
    result = run_trial(cfg, data, report=lambda r: curve.append(r["primary_metric"]))
    wall = time.perf_counter() - start
    if result.primary_metric is not None and result.status == "completed":
        curve.append(result.primary_metric)
    return {
        "setting": setting.name, "key": config_key(config), "method": sampled.method,
        "params": json.dumps(sampled.params, sort_keys=True),
        "learning_rate": sampled.learning_rate, "status": result.status,
        "reason": result.reason or "", "primary_metric": result.primary_metric,
        "dev_curve": json.dumps([round(v, 6) for v in curve]),
        "trainable_params": result.trainable_params, "total_params": result.total_params,
        "predicted_peak_bytes": predictor(sampled.method, sampled.params, setting,
                                          max(data.train_lengths)),
        "peak_memory_bytes": result.peak_memory_bytes, "memory_kind": result.memory_kind,
        "train_seconds": _round(result.train_seconds), "eval_seconds": _round(result.eval_seconds),
        "wall_seconds": _round(wall), "steps": result.steps, "task": setting.task,
        "train_samples": setting.train_samples, "eval_samples": setting.eval_samples,
        "epochs": setting.epochs, "batch_size": setting.batch_size,
        "max_length": setting.max_length, "seed": SEED,
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def main() -> None:
    from autopeft.paths import find_shared_dir

    shared = find_shared_dir()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--space", default=str(DEFAULT_SPACE))
    ap.add_argument("--settings", default=",".join(SETTINGS),
                    help=f"comma-separated, from {', '.join(SETTINGS)}")
    ap.add_argument("--model", default=str(shared / "models/all-MiniLM-L6-v2") if shared else None)
    ap.add_argument("--data-dir", default=str(shared / "data") if shared else None)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per trial (1: best on a shared machine)")
    ap.add_argument("--limit", type=int, default=None, help="stop after this many new rows")
    args = ap.parse_args()
    if not args.model or not args.data_dir:
        raise SystemExit("no ../shared found: pass --model DIR and --data-dir DIR")
    unknown = [s for s in args.settings.split(",") if s not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown setting {unknown[0]!r}; known: {', '.join(SETTINGS)}")
    settings = [SETTINGS[s] for s in args.settings.split(",")]

    import torch

    from autopeft.controller.replay import TABLE_COLUMNS
    from autopeft.controller.searcher import config_key
    from autopeft.runner.config import TrialConfig
    from autopeft.runner.trial import _quiet_libraries, prepare_data
    from autopeft.space import load_space

    _quiet_libraries()
    torch.set_num_threads(args.threads)
    space = load_space(args.space)
    done = existing_keys(args.out)
    todo = [(s, c) for s, c in design(space, settings) if (s.name, config_key(c)) not in done]
    if args.limit is not None:
        todo = todo[: args.limit]
    print(f"{len(done)} rows in {args.out}; {len(todo)} to run", flush=True)
    prov_path = args.out.with_suffix(".json")
    run = provenance(args, settings)
    write_provenance(prov_path, run)
    data = {}
    for s in settings:
        cfg = TrialConfig(task=s.task, model=args.model, method="lora", seed=SEED,
                          max_length=s.max_length, data_dir=args.data_dir,
                          train_samples=s.train_samples, eval_samples=s.eval_samples)
        data[s.name] = prepare_data(cfg)
    predictor = Predictor(args.model)
    claims = Claims(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with args.out.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        for i, (setting, config) in enumerate(todo, 1):
            if not claims.claim(setting.name, config_key(config)):
                continue  # another build runs it
            row = run_one(setting, config, space, data[setting.name], args, predictor)
            fcntl.flock(f, fcntl.LOCK_EX)  # other workers append to the same file
            try:
                if os.fstat(f.fileno()).st_size == 0:
                    writer.writeheader()
                writer.writerow(row)
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
            print(f"[{i}/{len(todo)} {time.perf_counter() - start:7.0f}s] {setting.name} "
                  f"{row['key']} -> {row['status']} {row['dev_curve']} "
                  f"{row['wall_seconds']}s", flush=True)
    run["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    run["rows_added"] = len(todo)
    write_provenance(prov_path, run)


if __name__ == "__main__":
    main()
