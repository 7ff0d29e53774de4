"""Benchmark: ``run_trial`` against a minimal hand-written torch + peft loop, side by side.

Prints (1) the wall time of ``run_trial`` divided by a minimal loop that does identical
steps (same model, LoRA config, tokenised data, batch order, optimizer, schedule and eval),
target <= 1.05; (2) the speed-up of length-grouped dynamic padding over padding every batch
to the maximum length. Both sides run in this one process, alternating, best of ``--repeat``.

    python scripts/bench_trial.py [--model DIR] [--steps 40] [--repeat 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

from autopeft.paths import find_shared_dir


def hand_loop(cfg, data, tokenizer) -> float:
    """The minimal loop: peft LoRA + AdamW + linear schedule + eval, nothing else."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

    from autopeft.runner.data import eval_batches, train_batches
    from autopeft.runner.train import total_steps

    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = AutoModelForSequenceClassification.from_pretrained(cfg.model, num_labels=2)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.params["r"],
                                             lora_alpha=16, target_modules=["query", "value"]))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    n = total_steps(len(data.train), cfg)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * n), n)
    pad = tokenizer.pad_token_id

    def collate(feats):
        ids = [torch.tensor(f["input_ids"]) for f in feats]
        input_ids = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=pad)
        mask = (input_ids != pad).long()
        tt = torch.nn.utils.rnn.pad_sequence(
            [torch.tensor(f["token_type_ids"]) for f in feats], batch_first=True)
        return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": tt}

    model.train()
    step, epoch = 0, 0
    lengths = data.train_lengths
    while step < n:
        for idx in train_batches(lengths, cfg.batch_size, seed=cfg.seed, epoch=epoch):
            feats = [data.train[i] for i in idx]
            batch = collate(feats)
            batch["labels"] = torch.tensor([f["labels"] for f in feats])
            loss = model(**batch).loss
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step >= n:
                break
        epoch += 1
    model.eval()
    correct = 0
    with torch.inference_mode():
        for idx in eval_batches(data.eval_lengths, cfg.batch_size * 2):
            pred = model(**collate([data.eval[i] for i in idx])).logits.argmax(-1).tolist()
            correct += sum(p == data.eval_references[i] for p, i in zip(pred, idx, strict=True))
    return time.perf_counter() - start


def timed_trial(cfg, data) -> tuple[float, object]:
    from autopeft.runner.trial import run_trial

    start = time.perf_counter()
    result = run_trial(cfg, data)
    if result.status != "completed":
        raise SystemExit(f"trial did not complete: {result.status} {result.reason}")
    return time.perf_counter() - start, result


def main() -> None:
    shared = find_shared_dir()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(shared / "models/all-MiniLM-L6-v2") if shared else None)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--train-samples", type=int, default=640)
    ap.add_argument("--eval-samples", type=int, default=256)
    ap.add_argument("--pad-to", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    if not args.model:
        raise SystemExit("no model: pass --model DIR (e.g. ../shared/models/all-MiniLM-L6-v2)")

    import torch

    from autopeft.runner.config import TrialConfig
    from autopeft.runner.trial import _quiet_libraries, prepare_data

    _quiet_libraries()
    torch.set_num_threads(torch.get_num_threads())
    cfg = TrialConfig(task="glue/sst2", model=args.model, method="lora",
                      params={"r": 8, "lora_alpha": 16, "target_modules": ["q", "v"]},
                      learning_rate=1e-3, epochs=100, max_steps=args.steps,
                      batch_size=args.batch_size, train_samples=args.train_samples,
                      eval_samples=args.eval_samples, seed=0)
    data = prepare_data(cfg)
    from autopeft.modeling import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model(args.model))
    print(f"MiniLM + LoRA r=8 q,v on SST-2: {args.steps} steps of {args.batch_size}, "
          f"{len(data.eval)} eval examples, {torch.get_num_threads()} threads")
    ours, hand = [], []
    hand_loop(cfg, data, tokenizer)  # warm-up: first model load pays file-cache misses
    for _ in range(args.repeat):
        t, result = timed_trial(cfg, data)
        ours.append(t)
        hand.append(hand_loop(cfg, data, tokenizer))
    print(f"run_trial     : {' '.join(f'{t:.2f}s' for t in ours)}  "
          f"(accuracy {result.primary_metric:.3f}, peak {result.peak_memory_bytes / 2**20:.0f} MiB"
          f" {result.memory_kind})")
    print(f"hand loop     : {' '.join(f'{t:.2f}s' for t in hand)}")
    ratio = min(ours) / min(hand)
    print(f"RATIO run_trial / hand loop (best of {args.repeat}): {ratio:.3f}  (target <= 1.05)")

    padded_cfg = TrialConfig(**{**cfg.to_dict(), "pad_to": args.pad_to, "group_by_length": False})
    grouped_t, padded_t = [], []
    for _ in range(args.repeat):
        grouped_t.append(timed_trial(cfg, data)[0])
        padded_t.append(timed_trial(padded_cfg, data)[0])
    print(f"grouped dynamic padding: {' '.join(f'{t:.2f}s' for t in grouped_t)}; "
          f"padded to {args.pad_to}: {' '.join(f'{t:.2f}s' for t in padded_t)}")
    print(f"SPEED-UP length-grouped dynamic padding over padding to {args.pad_to}: "
          f"{statistics.median(padded_t) / statistics.median(grouped_t):.2f}x")


if __name__ == "__main__":
    main()
