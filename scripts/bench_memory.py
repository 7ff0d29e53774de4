"""Benchmark: predicted vs measured peak training memory, on CPU (default) or a GPU.

``--device cpu`` (default). For every registered method on a tiny T5 and on MiniLM
(``../shared/models/all-MiniLM-L6-v2``, real weights), at two batch shapes, prints the peak
predicted from the config alone (:func:`autopeft.memory.predict_peak_memory`, ``device="cpu"``)
beside the peak the trial runner's CPU meter reads over two real training steps (``cpu_tensors``:
live tensor bytes, :class:`autopeft.runner.memory.PeakMemory`), then the median and worst
relative error (goal: median <= 10%). The same steps run under torch's profiler
(``profile_memory=True``, :mod:`autopeft.memory.measure`), an independent count of live CPU
tensor bytes from the allocator's own events, to check the meter. Then the meter's cost: seconds
per training step of MiniLM + LoRA with no meter, with the RSS meter (``cpu_rss``, the former
default) and with the tensor meter, measured side by side in alternating rounds. Finally (not
with ``--quick``) the t5-large LoRA prediction for a GPU in fp32 and bf16, and its time.

``--device cuda``. t5-base and t5-large built from ``../shared/models/configs`` with random
weights (nothing is downloaded), each method applied as the runner applies it, frozen weights in
the training dtype: for every method in fp32 and bf16, the predicted peak (``device="cuda"``)
beside ``torch.cuda.max_memory_allocated`` over real training steps, then the median and worst
error and the methods under-predicted by more than 10% (goal: median <= 10%, none). Predictions
run first in a pool of CPU processes. Then four small trials of MiniLM on SST-2 run packed on one
GPU through ``autopeft search`` (detected profile, four at once), and each trial's measured peak
is printed against its predicted peak and its share of the GPU (the planner's fraction of the
device budget). ``--models`` / ``--methods`` narrow the table to fit a time budget.

A step mirrors ``autopeft/runner/train.py``: forward with labels -> loss -> backward -> AdamW
step -> ``zero_grad(set_to_none=True)``. Predictions err high where eager autograd accumulates
a gradient in place and the trace, run under a dispatch mode, cannot (see
:mod:`autopeft.memory.predict`); the tensor meter is a dispatch mode too, so it sees the same.

    python scripts/bench_memory.py [--quick]
    python scripts/bench_memory.py --device cuda [--models t5-base] [--methods lora,ia3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Before torch loads: kineto (the profiler) logs "profiler_start/stop" at its level 5.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")

MiB = 2**20
GiB = 2**30
CUDA_MODELS = ("t5-base", "t5-large")
CUDA_DTYPES = ("fp32", "bf16")
CUDA_SHAPE = {"batch_size": 8, "seq_len": 256, "target_len": 8}
T5_LARGE_SNIPPET = """
import time, warnings
warnings.filterwarnings("ignore")
t0 = time.perf_counter()
from transformers import AutoConfig
from autopeft.memory import predict_peak_memory
cfg = AutoConfig.from_pretrained({path!r})
p = predict_peak_memory(cfg, "lora", batch_size=8, seq_len=256, dtype={dtype!r})
print(time.perf_counter() - t0, p.total_bytes, p.weights, p.details["seconds"])
"""


def _shared() -> Path:
    from autopeft.paths import find_shared_dir

    shared = find_shared_dir()
    if shared is None:
        sys.exit("../shared not found beside the checkout; set AUTOPEFT_SHARED")
    return shared


def _quiet() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()  # a fresh head's "newly initialized" report
    logging.disable_progress_bar()


def _method_names(only: Sequence[str] | None) -> list[str]:
    from autopeft.methods import list_methods

    names = [m.name for m in list_methods()]
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            sys.exit(f"unknown methods: {', '.join(unknown)}; known: {', '.join(names)}")
        names = [n for n in names if n in only]
    return names


def summary(errors: Sequence[float]) -> str:
    """Median and worst |relative error|, and how many are under-predicted by > 10%."""
    if not errors:
        return "no comparison"
    absolute = [abs(e) for e in errors]
    under = sum(e < -0.10 for e in errors)
    return (f"{len(errors)} comparisons: median |relative error| "
            f"{100 * statistics.median(absolute):.3f}%, worst {100 * max(absolute):.3f}%; "
            f"{under} under-predicted by more than 10%")


# -- CPU: prediction vs the runner's tensor meter (and the profiler) ------------------------
def cpu_models() -> list[tuple[str, object, Callable[[], object]]]:
    """(label, config, real-model factory) of the two CPU benchmark models."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from autopeft.memory.step import build_base_model
    from autopeft.testing import tiny_t5_config

    minilm = str(_shared() / "models" / "all-MiniLM-L6-v2")
    # The tiny T5 of the tests, 4x wider so that every method's default sizes divide its
    # width (Compacter: width / 32 divisible by 4), with a real-size vocabulary (MiniLM's,
    # as tiny_model_dir saves it) so that the LM head's logits weigh as in a real T5.
    t5 = tiny_t5_config(vocab_size=30522, d_model=128, d_kv=32, d_ff=256)
    mini = AutoConfig.from_pretrained(minilm)
    mini.num_labels = 2

    def load_minilm() -> object:
        _quiet()
        return AutoModelForSequenceClassification.from_pretrained(minilm, num_labels=2).train()

    return [
        ("tiny-t5", t5, lambda: build_base_model(t5, device="cpu")),
        ("minilm", mini, load_minilm),
    ]


def compare_one(label: str, config: object, factory: Callable[[], object], method: str,
                shape: dict) -> tuple[float, float]:
    """Predict, measure and print one row; return (prediction error vs the meter,
    meter error vs the profiler), both relative."""
    import torch

    from autopeft.memory import predict_peak_memory
    from autopeft.memory.measure import measure_training_peak
    from autopeft.memory.step import apply_method, make_batch
    from autopeft.modeling import hold_frozen_in
    from autopeft.runner.memory import PeakMemory

    pred = predict_peak_memory(config, method, device="cpu", **shape)
    torch.manual_seed(0)
    model = hold_frozen_in(apply_method(factory(), method, None), "fp32")
    meter = PeakMemory("cpu")
    t0 = time.perf_counter()
    meas = measure_training_peak(model, lambda: make_batch(config, **shape), meter=meter)
    seconds = time.perf_counter() - t0
    err = (pred.total_bytes - meas.meter_bytes) / meas.meter_bytes
    meter_err = (meas.meter_bytes - meas.peak_bytes) / meas.peak_bytes
    where = f"step {pred.details['peak_step']} {pred.details['peak_phase']}"
    print(f"{label:8} {method:14} {shape['batch_size']:5} {shape['seq_len']:4} "
          f"{pred.total_bytes / MiB:13.3f} {meas.meter_bytes / MiB:10.3f} {100 * err:+8.3f}% "
          f"{meas.peak_bytes / MiB:12.3f} {(meter.rss_peak_bytes or 0) / MiB:9.1f}  "
          f"{where:12} {pred.details['seconds']:9.2f} {seconds:9.2f}")
    return err, meter_err


def compare(shapes: list[tuple[int, int]], failures: list[str],
            methods: Sequence[str] | None = None) -> tuple[list[float], list[float]]:
    """One row per (model, method, shape); return the prediction and meter errors.

    A method that does not apply (or whose defaults do not fit the model) is shown as n/a;
    one that fails otherwise is listed in ``failures``, so that one method's bug does not
    hide the others.
    """
    from autopeft.errors import AutopeftError

    print(f"{'model':8} {'method':14} {'batch':>5} {'seq':>4} {'predicted MiB':>13} "
          f"{'meter MiB':>10} {'error':>9} {'profiler MiB':>12} {'RSS MiB':>9}  peak at     "
          f" predict s measure s")
    errors, meter_errors = [], []
    for label, config, factory in cpu_models():
        for method in _method_names(methods):
            for batch_size, seq_len in shapes:
                shape = {"batch_size": batch_size, "seq_len": seq_len, "target_len": 6}
                try:
                    err, meter_err = compare_one(label, config, factory, method, shape)
                except AutopeftError as exc:
                    print(f"{label:8} {method:14} n/a: {exc}")
                    break
                except Exception as exc:
                    print(f"{label:8} {method:14} FAILED: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}")
                    failures.append(f"{label}/{method}")
                    break
                errors.append(err)
                meter_errors.append(meter_err)
    return errors, meter_errors


def meter_overhead(rounds: int = 6, steps: int = 2) -> None:
    """Seconds per training step with no meter, the RSS meter and the tensor meter, measured
    in alternating rounds on one model, so that load changes on the machine hit all three;
    the ratios are taken within each round, and their median reported."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from autopeft.memory.step import apply_method, make_batch, make_optimizer, training_step
    from autopeft.runner.memory import PeakMemory

    _quiet()
    path = str(_shared() / "models" / "all-MiniLM-L6-v2")
    config = AutoConfig.from_pretrained(path)
    torch.manual_seed(0)
    model = apply_method(AutoModelForSequenceClassification.from_pretrained(path, num_labels=2),
                         "lora", None)
    opt = make_optimizer("adamw", model)

    def batch() -> dict:
        return make_batch(config, batch_size=16, seq_len=128, target_len=6)

    training_step(model, opt, batch)  # warm-up: optimizer state, allocator, kernels
    seconds: dict[str, list[float]] = {"none": [], "cpu_rss": [], "cpu_tensors": []}
    for _ in range(rounds):
        for name in seconds:
            meter = None if name == "none" else PeakMemory("cpu", cpu_meter=name)
            if meter is not None:
                meter.track(model)
            t0 = time.perf_counter()
            with meter if meter is not None else contextlib.nullcontext():
                for _ in range(steps):
                    training_step(model, opt, batch)
            seconds[name].append((time.perf_counter() - t0) / steps)

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(seconds[a], seconds[b], strict=True))

    print(f"\nmeter cost, MiniLM + LoRA, batch 16 x 128, {rounds} alternating rounds of {steps} "
          f"steps, {torch.get_num_threads()} threads (median s/step; ratios: median over rounds "
          "of the ratio within a round):")
    for name, values in seconds.items():
        print(f"  {name:12} {statistics.median(values):.3f} s/step  "
              f"({ratio(name, 'none'):.3f}x no meter)")
    print(f"  tensor meter / RSS meter: {ratio('cpu_tensors', 'cpu_rss'):.3f}x per step")


def time_t5_large() -> None:
    path = str(_shared() / "models" / "configs" / "t5-large")
    print("\nt5-large + LoRA (r=8 on q,v), batch 8 x 256 tokens, prediction for a GPU:")
    for dtype in ("fp32", "bf16"):
        out = subprocess.run([sys.executable, "-c", T5_LARGE_SNIPPET.format(path=path,
                              dtype=dtype)], capture_output=True, text=True, check=True)
        wall, total, weights, inner = out.stdout.split()
        print(f"  {dtype}: predicted peak {int(total) / GiB:.2f} GiB (frozen weights "
              f"{int(weights) / GiB:.2f} GiB); fresh process {float(wall):.1f} s (imports "
              f"included), predict_peak_memory {float(inner):.1f} s")


# -- CUDA: prediction vs torch.cuda.max_memory_allocated -------------------------------------
def _predict_job(job: tuple) -> tuple:
    """One prediction (runs in a pool process): job -> (job, total bytes or error text)."""
    warnings.filterwarnings("ignore")
    config, method, dtype, shape = job[1], job[2], job[3], job[4]
    from autopeft.errors import AutopeftError
    from autopeft.memory import predict_peak_memory

    try:
        pred = predict_peak_memory(config, method, dtype=dtype, device="cuda", **shape)
    except AutopeftError as exc:
        return job, f"n/a: {exc}"
    except Exception as exc:  # noqa: BLE001 - one method's failure must not hide the others
        return job, f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return job, pred.total_bytes


def cuda_compare(models: Sequence[tuple[str, Any]], methods: Sequence[str],
                 dtypes: Sequence[str] = CUDA_DTYPES, shape: dict | None = None, *,
                 device: str = "cuda", stats: Any = None, workers: int | None = None,
                 failures: list[str] | None = None) -> list[dict[str, Any]]:
    """Predicted vs measured device peaks; prints and returns one row each (model, method,
    dtype, predicted, measured bytes, signed relative error).

    Args:
        models: (label, transformers config) pairs.
        methods: Method names.
        dtypes: Training dtypes (frozen weights held in them, trainable state fp32).
        shape: ``batch_size``, ``seq_len``, ``target_len``.
        device: ``cuda``; ``cpu`` with a fake ``stats`` (tests exercise this path on CPU).
        stats: The memory-stats boundary for :func:`autopeft.memory.measure.measure_device_peak`
            (``torch.cuda`` when None).
        workers: Processes predicting in parallel (0: in this process).
        failures: Receives ``model/method/dtype`` of rows that failed.
    """
    import torch

    from autopeft.errors import AutopeftError
    from autopeft.memory.measure import measure_device_peak
    from autopeft.memory.step import apply_method, build_base_model, make_batch
    from autopeft.modeling import hold_frozen_in

    shape = dict(shape or CUDA_SHAPE)
    failures = failures if failures is not None else []
    jobs = [(label, config, method, dtype, shape) for label, config in models
            for method in methods for dtype in dtypes]
    if workers is None:
        workers = max(1, min(8, (os.cpu_count() or 2) - 1))
    t0 = time.perf_counter()
    if workers:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: the pool starts before this process touches CUDA, and forked CUDA is unsafe
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            predicted = dict(((j[0], j[2], j[3]), out) for j, out in pool.map(_predict_job, jobs))
    else:
        predicted = dict(((j[0], j[2], j[3]), out) for j, out in map(_predict_job, jobs))
    print(f"{len(jobs)} predictions in {time.perf_counter() - t0:.0f} s ({workers or 1} "
          f"process(es)); batch {shape['batch_size']} x {shape['seq_len']}, target "
          f"{shape['target_len']}\n")
    print(f"{'model':9} {'method':14} {'dtype':5} {'predicted MiB':>13} {'measured MiB':>13} "
          f"{'error':>9}  measure s")
    rows = []
    for label, config in models:
        for method in methods:
            for dtype in dtypes:
                pred = predicted[(label, method, dtype)]
                if isinstance(pred, str):
                    print(f"{label:9} {method:14} {dtype:5} {pred}")
                    if pred.startswith("FAILED"):
                        failures.append(f"{label}/{method}/{dtype}")
                    continue

                def build(config=config, method=method, dtype=dtype) -> Any:
                    torch.manual_seed(0)
                    base = build_base_model(config, device=device)
                    return hold_frozen_in(apply_method(base, method, None), dtype)

                def batch(config=config) -> dict:
                    return {k: v.to(device) for k, v in make_batch(config, **shape).items()}

                t1 = time.perf_counter()
                try:
                    measured = measure_device_peak(build, batch, dtype=dtype, device=device,
                                                   stats=stats)
                except AutopeftError as exc:
                    print(f"{label:9} {method:14} {dtype:5} n/a: {exc}")
                    continue
                except Exception as exc:  # noqa: BLE001 - report it, go on with the others
                    print(f"{label:9} {method:14} {dtype:5} FAILED: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}")
                    failures.append(f"{label}/{method}/{dtype}")
                    continue
                err = (pred - measured) / measured
                rows.append({"model": label, "method": method, "dtype": dtype,
                             "predicted": pred, "measured": measured, "error": err})
                print(f"{label:9} {method:14} {dtype:5} {pred / MiB:13.1f} {measured / MiB:13.1f} "
                      f"{100 * err:+8.2f}%  {time.perf_counter() - t1:8.1f}")
    return rows


def packed_rows(store_url: str, study: str) -> list[dict[str, Any]]:
    """Each trial of ``study``: measured peak, meter, predicted peak and share of the GPU."""
    from autopeft.store import Store

    store = Store(store_url)
    try:
        record = store.require_study(study)
        budget = ((record.hardware or {}).get("profile") or {}).get("budget_bytes")
        rows = []
        for t in store.trials(study):
            extra = t.extra or {}
            fraction = extra.get("gpu_fraction")
            rows.append({
                "number": t.number, "method": t.method, "status": t.status,
                "measured": t.peak_memory_bytes, "meter": extra.get("peak_memory_meter"),
                "predicted": extra.get("predicted_peak_bytes"), "fraction": fraction,
                "share": int(fraction * budget) if fraction and budget else None,
                "gpu_ids": extra.get("gpu_ids"),
            })
        return rows
    finally:
        store.close()


def print_packed(rows: list[dict[str, Any]]) -> None:
    def mib(n: Any) -> str:
        return f"{n / MiB:10.1f}" if n else f"{'-':>10}"

    print(f"{'trial':>5} {'method':14} {'status':10} {'measured':>10} {'predicted':>10} "
          f"{'share':>10} {'fraction':>8}  meter           gpus   (MiB)")
    for r in rows:
        within = "" if not (r["measured"] and r["share"]) else (
            "  within share" if r["measured"] <= r["share"] else "  OVER SHARE")
        print(f"{r['number']:5} {r['method']:14} {r['status']:10} {mib(r['measured'])} "
              f"{mib(r['predicted'])} {mib(r['share'])} {r['fraction'] or 0:8.3f}  "
              f"{r['meter'] or '-':15} {','.join(r['gpu_ids'] or []) or '-':6}{within}")


def packed_search(trials: int = 4) -> None:
    """``autopeft search``: ``trials`` small MiniLM trials at once on the detected GPU."""
    minilm = str(_shared() / "models" / "all-MiniLM-L6-v2")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        cmd = [sys.executable, "-m", "autopeft.cli.main", "search", "--task", "glue/sst2",
               "--model", minilm, "--space", "quick", "--trials", str(trials), "--concurrency",
               str(trials), "--epochs", "1", "--train-samples", "512", "--eval-samples", "128",
               "--max-length", "128", "--batch-size", "32", "--storage", url,
               "--study", "bench-memory-packed"]
        print(f"\n{trials} trials packed on one GPU: {' '.join(cmd[2:])}")
        t0 = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True)
        print(f"search exited {run.returncode} after {time.perf_counter() - t0:.0f} s")
        if run.returncode != 0:
            print(run.stderr[-2000:])
            return
        print_packed(packed_rows(url, "bench-memory-packed"))


def cuda_main(models: Sequence[str], methods: Sequence[str], skip_search: bool) -> None:
    import torch
    from transformers import AutoConfig

    configs = [(m, AutoConfig.from_pretrained(_shared() / "models" / "configs" / m))
               for m in models]
    print("measured: torch.cuda.max_memory_allocated over 2 real training steps (after the "
          "model is built); predicted: fake-tensor trace of the same steps from the config\n")
    failures: list[str] = []
    rows = cuda_compare(configs, methods, failures=failures)
    print(f"\n{summary([r['error'] for r in rows])} "
          "(goal: median <= 10%, none under by more than 10%)")
    print(f"device: {torch.cuda.get_device_name(0)}")
    if failures:
        print(f"failed: {', '.join(failures)}")
    if not skip_search:
        packed_search()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="cpu: one batch shape, no t5-large timing")
    parser.add_argument("--models", default=",".join(CUDA_MODELS),
                        help="cuda: configs from ../shared/models/configs")
    parser.add_argument("--methods", default="", help="comma-separated (default: all)")
    parser.add_argument("--skip-search", action="store_true",
                        help="cuda: no packed `autopeft search`")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    methods = _method_names([m for m in args.methods.split(",") if m])
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            sys.exit("--device cuda: torch sees no CUDA GPU here")
        cuda_main([m for m in args.models.split(",") if m], methods, args.skip_search)
        return
    shapes = [(8, 64)] if args.quick else [(8, 64), (16, 128)]
    print("meter: the trial runner's CPU meter (cpu_tensors: live tensor bytes) over 2 real "
          "training steps; profiler: torch profiler allocation events over the same steps; "
          "RSS: the former meter (weights + resident-set growth) beside them; predicted: "
          "fake-tensor trace of the same steps from the config\n")
    failures: list[str] = []
    errors, meter_errors = compare(shapes, failures, methods)
    print(f"\nprediction vs meter: {summary(errors)} (goal: median <= 10%)")
    print(f"meter vs profiler:   {summary(meter_errors)}")
    if failures:
        print(f"methods that failed to build or trace: {', '.join(failures)}")
    meter_overhead()
    if not args.quick:
        time_t5_large()


if __name__ == "__main__":
    main()
