"""Benchmark: every registered method trains one real trial, on MiniLM and on a tiny T5.

For each method of the registry (or ``--methods``) and each model it runs ``run_trial`` on
real SST-2 data from ``../shared`` with the same protocol, and prints one row: status, dev
accuracy, unparseable dev predictions (T5 generates label text), trainable parameters, and
seconds per training step relative to LoRA (r=8 on q,v) measured in the same run.

* ``minilm`` — the pretrained all-MiniLM-L6-v2 with a fresh 2-class head.
* ``t5`` — a small random T5 (d_model 128, 2 + 2 layers, the MiniLM vocabulary), first fully
  fine-tuned text-to-text on SST-2 until it generates label words (a stand-in for a
  pretrained T5: a frozen random base never emits them), then adapted by each method. It
  shows that every method trains and generates label text through the T5 path; its accuracy
  is that of a tiny model, not a real result.

Each method trains at the geometric middle of its own learning-rate range (the range the
default spaces search). Run from the checkout with ``../shared`` beside it:

    python scripts/bench_methods.py [--models minilm t5] [--methods lora ia3 ...]
        [--train-samples 1000 --eval-samples 200 --epochs 2 --max-length 64]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

from autopeft.paths import find_shared_dir


def small_t5_dir(path: str, train_samples: int) -> str:
    """A small T5 with the MiniLM tokenizer, fine-tuned until it generates SST-2 labels."""
    import torch
    from transformers import AutoTokenizer

    from autopeft.runner.config import TrialConfig
    from autopeft.runner.train import train
    from autopeft.runner.trial import build_trial_model, prepare_data
    from autopeft.testing import minilm_tokenizer_dir, tiny_t5

    tok = AutoTokenizer.from_pretrained(str(minilm_tokenizer_dir()))
    model = tiny_t5(vocab_size=len(tok), d_model=128, d_kv=32, d_ff=256,
                    pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id,
                    decoder_start_token_id=tok.pad_token_id)
    model.save_pretrained(f"{path}/random")
    tok.save_pretrained(f"{path}/random")
    cfg = TrialConfig(task="glue/sst2", model=f"{path}/random", method="full",
                      learning_rate=1e-3, epochs=2, batch_size=16, max_length=64,
                      train_samples=train_samples, seed=1)
    data = prepare_data(cfg)
    torch.manual_seed(0)
    model, tokenizer, _ = build_trial_model(cfg, data.spec)
    train(model, data, tokenizer, cfg, torch.device("cpu"))
    model.save_pretrained(f"{path}/tuned")
    tokenizer.save_pretrained(f"{path}/tuned")
    return f"{path}/tuned"


def model_dirs(names: list[str], tmp: str, train_samples: int) -> dict[str, str]:
    shared = find_shared_dir()
    if shared is None:
        raise SystemExit("../shared not found beside the checkout; set AUTOPEFT_SHARED")
    out = {}
    for name in names:
        if name == "minilm":
            out[name] = str(shared / "models" / "all-MiniLM-L6-v2")
        elif name == "t5":
            out[name] = small_t5_dir(f"{tmp}/small-t5", train_samples)
        else:
            raise SystemExit(f"unknown model {name!r}; choose minilm or t5")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["minilm", "t5"])
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--train-samples", type=int, default=1000)
    parser.add_argument("--eval-samples", type=int, default=200)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads per trial (default: torch's)")
    args = parser.parse_args()

    from autopeft.methods import get_method, list_methods
    from autopeft.runner.config import TrialConfig
    from autopeft.runner.trial import prepare_data, run_trial

    names = args.methods or [m.name for m in list_methods()]
    if "lora" in names:  # the reference first, so every ratio has its denominator
        names.remove("lora")
    names = ["lora", *names]
    header = (f"{'model':7} {'method':15} {'status':15} {'dev acc':>7} {'unparsed':>8} "
              f"{'trainable':>11} {'s/step':>7} {'vs lora':>7}  reason")
    with tempfile.TemporaryDirectory() as tmp:
        dirs = model_dirs(args.models, tmp, args.train_samples)
        print(header)
        for model_name, path in dirs.items():
            def config(method: str, path: str = path) -> TrialConfig:
                low, high = get_method(method).lr_range
                return TrialConfig(
                    task="glue/sst2", model=path, method=method,
                    learning_rate=math.sqrt(low * high),
                    epochs=args.epochs, batch_size=args.batch_size,
                    train_samples=args.train_samples,
                    eval_samples=args.eval_samples, max_length=args.max_length,
                    threads=args.threads,
                )

            data = prepare_data(config("lora"))
            lora_step = None
            for method in names:
                start = time.perf_counter()
                res = run_trial(config(method), data)
                per_step = res.train_seconds / res.steps if res.steps else None
                if method == "lora":
                    lora_step = per_step
                ratio = per_step / lora_step if per_step and lora_step else None
                unparsed = res.unparseable_predictions
                print(
                    f"{model_name:7} {method:15} {res.status:15} "
                    f"{_num(res.primary_metric, '.3f'):>7} {_num(unparsed, '.0f'):>8} "
                    f"{_num(res.trainable_params, ','):>11} {_num(per_step, '.3f'):>7} "
                    f"{_num(ratio, '.2f'):>7}  {(res.reason or '')[:60]}"
                    f"{'' if res.reason else f'({time.perf_counter() - start:.0f} s)'}",
                    flush=True,
                )


def _num(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


if __name__ == "__main__":
    main()
