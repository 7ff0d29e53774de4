"""Benchmark: predicted vs measured peak training memory, and the t5-large prediction time.

For every registered method on a tiny T5 and on MiniLM (``../shared/models/all-MiniLM-L6-v2``,
real weights), at two batch shapes, prints the peak predicted from the config alone
(:func:`autopeft.memory.predict_peak_memory`, ``device="cpu"``) beside the peak measured
over two real CPU training steps, then the median and worst relative error (goal: median
<= 10%). Finally it times a t5-large LoRA prediction in a fresh process (imports included)
and in-process.

What is measured: bytes of live CPU tensor storages, from real allocations. torch's profiler
(``profile_memory=True``) records every allocation and free of the CPU allocator with the
allocator's running total; the peak of that total during the steps, plus the parameters and
buffers alive before them, is the measured peak (:mod:`autopeft.memory.measure`). It is the
CPU counterpart of ``torch.cuda.max_memory_allocated``, which trials record on GPUs; the
trial runner's CPU number (resident-set growth) also counts allocator slack and Python
objects and is not tensor-exact. A step mirrors ``autopeft/runner/train.py``: forward with
labels -> loss -> backward -> AdamW step -> ``zero_grad(set_to_none=True)``.

Predictions err high where eager autograd accumulates a gradient in place and the trace,
run under a dispatch mode, cannot (see :mod:`autopeft.memory.predict`).

    python scripts/bench_memory.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings

# Before torch loads: kineto (the profiler) logs "profiler_start/stop" at its level 5.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")

MiB = 2**20
T5_LARGE_SNIPPET = """
import time, warnings
warnings.filterwarnings("ignore")
t0 = time.perf_counter()
from transformers import AutoConfig
from autopeft.memory import predict_peak_memory
cfg = AutoConfig.from_pretrained({path!r})
p = predict_peak_memory(cfg, "lora", batch_size=8, seq_len=256, dtype={dtype!r})
print(time.perf_counter() - t0, p.total_bytes, p.details["seconds"])
"""


def models() -> list[tuple[str, object, object]]:
    """(label, config, real-model factory) of the two benchmark models."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from autopeft.memory.step import build_base_model
    from autopeft.paths import find_shared_dir
    from autopeft.testing import tiny_t5_config

    shared = find_shared_dir()
    if shared is None:
        sys.exit("../shared not found beside the checkout; set AUTOPEFT_SHARED")
    minilm = str(shared / "models" / "all-MiniLM-L6-v2")
    # The tiny T5 of the tests, 4x wider so that every method's default sizes divide its
    # width (Compacter: width / 32 divisible by 4), with a real-size vocabulary (MiniLM's,
    # as tiny_model_dir saves it) so that the LM head's logits weigh as in a real T5.
    t5 = tiny_t5_config(vocab_size=30522, d_model=128, d_kv=32, d_ff=256)
    mini = AutoConfig.from_pretrained(minilm)
    mini.num_labels = 2

    def load_minilm() -> object:
        from transformers.utils import logging

        logging.set_verbosity_error()  # the fresh head's "newly initialized" report
        logging.disable_progress_bar()
        return AutoModelForSequenceClassification.from_pretrained(minilm, num_labels=2).train()

    return [
        ("tiny-t5", t5, lambda: build_base_model(t5, device="cpu")),
        ("minilm", mini, load_minilm),
    ]


def compare_one(label: str, config: object, factory: object, method: str,
                shape: dict) -> float:
    """Predict, measure and print one row; return the relative error."""
    import torch

    from autopeft.memory import predict_peak_memory
    from autopeft.memory.measure import measure_training_peak
    from autopeft.memory.step import apply_method, make_batch

    pred = predict_peak_memory(config, method, device="cpu", **shape)
    torch.manual_seed(0)
    model = apply_method(factory(), method, None)
    t0 = time.perf_counter()
    meas = measure_training_peak(model, lambda: make_batch(config, **shape))
    seconds = time.perf_counter() - t0
    err = (pred.total_bytes - meas.peak_bytes) / meas.peak_bytes
    where = f"step {pred.details['peak_step']} {pred.details['peak_phase']}"
    print(f"{label:8} {method:14} {shape['batch_size']:5} {shape['seq_len']:4} "
          f"{pred.total_bytes / MiB:14.3f} {meas.peak_bytes / MiB:13.3f} {100 * err:+7.3f}%  "
          f"{where:12} {pred.details['seconds']:9.2f} {seconds:10.2f}")
    return err


def compare(shapes: list[tuple[int, int]], failures: list[str]) -> list[float]:
    """One row per (model, method, shape); return the relative errors.

    A method that does not apply (or whose defaults do not fit the model) is shown as n/a;
    one that fails otherwise is listed in ``failures``, so that one method's bug does not
    hide the others.
    """
    from autopeft.errors import AutopeftError
    from autopeft.methods import list_methods

    print(f"{'model':8} {'method':14} {'batch':>5} {'seq':>4} {'predicted MiB':>14} "
          f"{'measured MiB':>13} {'error':>8}  peak at      predict s  measure s")
    errors = []
    for label, config, factory in models():
        for method in (m.name for m in list_methods()):
            for batch_size, seq_len in shapes:
                shape = {"batch_size": batch_size, "seq_len": seq_len, "target_len": 6}
                try:
                    errors.append(abs(compare_one(label, config, factory, method, shape)))
                except AutopeftError as exc:
                    print(f"{label:8} {method:14} n/a: {exc}")
                    break
                except Exception as exc:
                    print(f"{label:8} {method:14} FAILED: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}")
                    failures.append(f"{label}/{method}")
                    break
    return errors


def time_t5_large() -> None:
    from autopeft.paths import find_shared_dir

    path = str(find_shared_dir() / "models" / "configs" / "t5-large")
    print("\nt5-large + LoRA (r=8 on q,v), batch 8 x 256 tokens, prediction for a GPU:")
    for dtype in ("fp32", "bf16"):
        out = subprocess.run([sys.executable, "-c", T5_LARGE_SNIPPET.format(path=path,
                              dtype=dtype)], capture_output=True, text=True, check=True)
        wall, total, inner = out.stdout.split()
        print(f"  {dtype}: predicted peak {int(total) / 2**30:.2f} GiB; fresh process "
              f"{float(wall):.1f} s (imports included), predict_peak_memory {float(inner):.1f} s")
    from transformers import AutoConfig

    from autopeft.memory import predict_peak_memory

    cfg = AutoConfig.from_pretrained(path)
    t0 = time.perf_counter()
    predict_peak_memory(cfg, "lora", batch_size=8, seq_len=256)
    print(f"  fp32 again in this (warm) process: {time.perf_counter() - t0:.1f} s "
          "(goal < 30 s on 2 cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one batch shape, no t5-large")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    shapes = [(8, 64)] if args.quick else [(8, 64), (16, 128)]
    print("measured: peak bytes of live CPU tensors over 2 real training steps (torch profiler "
          "allocation events, allocator running total); predicted: fake-tensor trace of the "
          "same steps from the config\n")
    failures: list[str] = []
    errors = compare(shapes, failures)
    print(f"\n{len(errors)} comparisons: median |relative error| "
          f"{100 * statistics.median(errors):.3f}%, worst {100 * max(errors):.3f}% "
          "(goal: median <= 10%)")
    if failures:
        print(f"methods that failed to build or trace: {', '.join(failures)}")
    if not args.quick:
        time_t5_large()


if __name__ == "__main__":
    main()
