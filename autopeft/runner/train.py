"""The training loop and evaluation of one trial.

A plain torch loop rather than ``transformers.Trainer``: the trial needs exact control of the
per-step budget (max steps, wall-clock deadline, divergence check) and of timing, and the
Trainer's per-step overhead would show in ``scripts/bench_trial.py``'s ratio against a
hand-written loop.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autopeft.runner.config import TrialConfig
from autopeft.runner.data import PreparedData, eval_batches, make_collator, train_batches


@dataclass
class TrainStats:
    steps: int
    epochs_completed: float
    examples: int
    seconds: float
    stopped_by: str | None  # None | "max_steps" | "timeout" | "diverged"
    last_loss: float | None


def autocast_dtype(precision: str, device: Any) -> Any:
    """The CUDA autocast dtype of :mod:`autopeft.precision`'s policy (None: plain fp32)."""
    from autopeft.precision import device_dtype, torch_dtype

    name = device_dtype(precision, device)
    return None if name == "fp32" else torch_dtype(name)


def _to_device(batch: dict, device: Any) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def total_steps(n_train: int, cfg: TrialConfig) -> int:
    per_epoch = math.ceil(n_train / cfg.batch_size)
    steps = max(1, math.ceil(per_epoch * cfg.epochs))
    return min(steps, cfg.max_steps) if cfg.max_steps else steps


def train(
    model: Any, data: PreparedData, tokenizer: Any, cfg: TrialConfig, device: Any,
    deadline: float | None = None,
    checkpoint: Callable[[int, float, float], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> TrainStats:
    """Train until epochs, ``max_steps`` or the deadline (``time.monotonic()``) is reached.

    ``checkpoint(step, epochs_done, train_seconds)`` is called every ``cfg.eval_every`` steps
    (default: at each epoch end) before the last step; an early-stopping scheduler reports
    from there. Time spent in checkpoints is not training time: ``seconds`` leaves it out.
    ``on_step(step, total_steps)`` is called after every optimizer step (live progress).
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    n_steps = total_steps(len(data.train), cfg)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(cfg.warmup_ratio * n_steps), n_steps
    )
    amp = autocast_dtype(cfg.precision, device)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    collate = make_collator(tokenizer, is_seq2seq=data.is_seq2seq, pad_to=cfg.pad_to)
    lengths = data.train_lengths
    per_epoch = math.ceil(len(lengths) / cfg.batch_size)

    model.train()
    step, examples, loss_value, stopped = 0, 0, None, None
    start = time.perf_counter()
    paused = 0.0  # seconds spent in checkpoints (dev evaluations)
    epoch = 0
    while step < n_steps and stopped is None:
        for idx in train_batches(
            lengths, cfg.batch_size, seed=cfg.seed, epoch=epoch, group_by_length=cfg.group_by_length
        ):
            loss = torch.zeros((), device=device)
            # gradient accumulation: the same batch in grad_accum micro-batches, each loss
            # weighted by its share of the batch, then one optimizer step
            micro = math.ceil(len(idx) / cfg.grad_accum)
            for j in range(0, len(idx), micro):
                part = idx[j : j + micro]
                batch = _to_device(collate([data.train[i] for i in part]), device)
                ctx = torch.autocast("cuda", dtype=amp) if amp else contextlib.nullcontext()
                with ctx:
                    part_loss = model(**batch).loss * (len(part) / len(idx))
                if scaler is not None:
                    scaler.scale(part_loss).backward()
                else:
                    part_loss.backward()
                loss = loss + part_loss.detach()
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            examples += len(idx)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                stopped = "diverged"
            elif step >= n_steps:
                stopped = "max_steps" if cfg.max_steps and step == cfg.max_steps else None
            elif deadline is not None and time.monotonic() >= deadline:
                stopped = "timeout"
            if on_step is not None:
                on_step(step, n_steps)
            if stopped is not None or step >= n_steps:
                break
            if checkpoint is not None and step % (cfg.eval_every or per_epoch) == 0:
                t0 = time.perf_counter()
                checkpoint(step, round(step / per_epoch, 4), t0 - start - paused)
                paused += time.perf_counter() - t0
        epoch += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return TrainStats(
        steps=step,
        epochs_completed=round(step / per_epoch, 4),
        examples=examples,
        seconds=time.perf_counter() - start - paused,
        stopped_by=stopped,
        last_loss=loss_value,
    )


def predict(model: Any, data: PreparedData, tokenizer: Any, cfg: TrialConfig, device: Any,
            unparsed: dict[int, str] | None = None) -> list:
    """Predictions on the eval split, in eval order (labels, floats, or None if unparseable).

    Args:
        unparsed: If given, receives eval index -> generated text of every output that did
            not parse as a label (seq2seq only; a classification head always predicts one).
    """
    import torch

    from autopeft.tasks import parse_label_text

    model.eval()
    collate = make_collator(tokenizer, is_seq2seq=False)  # eval features carry no labels
    preds: list[Any] = [None] * len(data.eval)
    amp = autocast_dtype(cfg.precision, device)
    with torch.inference_mode():
        for idx in eval_batches(data.eval_lengths, cfg.batch_size * 2):
            batch = _to_device(collate([data.eval[i] for i in idx]), device)
            ctx = torch.autocast("cuda", dtype=amp) if amp else contextlib.nullcontext()
            with ctx:
                if data.is_seq2seq:
                    out = model.generate(
                        **batch, max_new_tokens=data.max_target_length + 2, do_sample=False,
                        num_beams=1,
                    )
                    texts = tokenizer.batch_decode(out, skip_special_tokens=True)
                    values = [parse_label_text(data.spec, t) for t in texts]
                    if unparsed is not None:
                        unparsed.update((i, t) for i, t, v in zip(idx, texts, values, strict=True)
                                        if v is None)
                else:
                    logits = model(**batch).logits.float()
                    if data.spec.is_regression:
                        values = logits.squeeze(-1).tolist()
                    else:
                        values = logits.argmax(-1).tolist()
            for i, v in zip(idx, values, strict=True):
                preds[i] = v
    model.train()
    return preds
