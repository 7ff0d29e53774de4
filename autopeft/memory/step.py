"""One training step as the trial runner takes it, shared by prediction and measurement.

The predictor traces these functions on fake tensors and ``scripts/bench_memory.py`` runs
them on real ones, so both see the same model construction, batch shapes and step:
forward with labels -> loss -> backward -> optimizer step -> ``zero_grad(set_to_none=True)``,
as in :func:`autopeft.runner.train.train`.

torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import contextlib
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.precision import torch_dtype

OPTIMIZERS = ("adamw", "adam", "sgd")


def build_base_model(config: Any, *, num_labels: int = 2, device: str = "meta") -> Any:
    """The model the trial runner trains, from ``config`` alone on ``device`` (random init).

    :func:`autopeft.modeling.build_model`, for a bare config (``config`` is not modified).
    """
    from autopeft.modeling import build_model, config_ref

    return build_model(config_ref(config), num_labels=num_labels, device=device,
                       pretrained=False)


def apply_method(model: Any, method: str, params: dict | None) -> Any:
    """Apply a registered method exactly as the trial runner does (through the registry).

    On a ``meta`` model (no weight values), a method whose initialisation reads the weights
    (an SVD, a mask from ``nonzero``) cannot be applied: that is an :class:`AutopeftError`
    naming the method, so that callers (estimates, the planner) report it, not crash.
    """
    from autopeft.errors import AutopeftError, NeedsWeights
    from autopeft.methods.base import ModelInfo, get_method

    try:
        out = get_method(method).build(model, params, ModelInfo.from_config(model.config))
    except AutopeftError:
        raise
    except Exception as exc:
        if not any(p.is_meta for p in model.parameters()):
            raise
        raise NeedsWeights(
            f"cannot estimate method '{method}' from the config alone: its initialisation reads "
            f"the base weights, which a weightless (meta) model has not ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})"
        ) from exc
    return out.train()


def make_batch(
    config: Any, *, batch_size: int, seq_len: int, target_len: int, num_labels: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """A batch shaped like the runner's collator output, with one padded position.

    Seq2seq: ``input_ids``, ``attention_mask`` and ``labels`` of ``target_len`` tokens.
    Encoders: ``input_ids``, ``attention_mask`` (+ ``token_type_ids`` when the model has
    token types, as BERT tokenizers emit) and one label per example.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    vocab = int(config.vocab_size)
    low = min(2, vocab - 1)  # keep pad/eos ids out of the middle of sequences
    ids = torch.randint(low, vocab, (batch_size, seq_len), generator=gen)
    mask = torch.ones_like(ids)
    if seq_len > 1:
        # One padded position: dynamically padded batches hold padding, and models skip the
        # attention mask (and its memory) when it is all ones, which a trace cannot know.
        mask[-1, -1] = 0
        ids[-1, -1] = int(getattr(config, "pad_token_id", None) or 0)
    batch = {"input_ids": ids, "attention_mask": mask}
    if getattr(config, "is_encoder_decoder", False):
        batch["labels"] = torch.randint(low, vocab, (batch_size, target_len), generator=gen)
        return batch
    if (getattr(config, "type_vocab_size", 0) or 0) > 1:
        batch["token_type_ids"] = torch.zeros_like(ids)
    if num_labels == 1:
        batch["labels"] = torch.rand(batch_size, generator=gen)
    else:
        batch["labels"] = torch.randint(0, num_labels, (batch_size,), generator=gen)
    return batch


def make_optimizer(name: str, model: Any, *, foreach: bool | None = None) -> Any:
    """The optimizer over the trainable parameters (the runner uses AdamW, lr irrelevant here).

    ``foreach=None`` leaves torch's default (for-loop on CPU, ``foreach`` on CUDA); the
    ``foreach`` kernels hold an intermediate per parameter for the whole step, so the
    predictor sets it to mirror the device it predicts for.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise AutopeftError("the model has no trainable parameter: nothing to optimize")
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, foreach=foreach)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-4, foreach=foreach)
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-4, foreach=foreach)
    raise AutopeftError(f"unknown optimizer '{name}'; known: {', '.join(OPTIMIZERS)}")


def autocast_context(dtype: str, device_type: str = "cpu") -> Any:
    """Mixed precision as the runner applies it: autocast to ``dtype`` (frozen weights are
    held in it too, trainable ones in fp32: :func:`autopeft.modeling.hold_frozen_in`).

    The predictor traces on CPU tensors, so CPU autocast stands in for CUDA autocast there
    (their op lists agree on what matters for memory: matmuls and linears run in 16 bits);
    real steps on a GPU pass ``device_type="cuda"``.
    """
    import torch

    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch_dtype(dtype))


def training_step(
    model: Any, optimizer: Any, batch_fn: Any, *, dtype: str = "fp32", tracker: Any = None,
    device_type: str = "cpu",
) -> None:
    """Forward with labels, backward, optimizer step, ``zero_grad(set_to_none=True)``.

    Args:
        model: The model in train mode.
        optimizer: From :func:`make_optimizer`.
        batch_fn: Called inside the step to create the batch (so the batch counts as
            step memory, as the runner's freshly collated batch does).
        dtype: ``fp32`` or an autocast dtype (``bf16``, ``fp16``).
        tracker: An :class:`~autopeft.memory.tracker.AllocationTracker` whose ``phase`` is
            switched between forward, backward and optimizer, or None.
        device_type: Where the tensors are (``cpu``, or ``cuda`` for real GPU steps): the
            autocast to use.
    """

    def phase(name: str) -> None:
        if tracker is not None:
            tracker.phase = name

    phase("forward")
    batch = batch_fn()
    with autocast_context(dtype, device_type):
        loss = model(**batch).loss
    phase("backward")
    loss.backward()
    # batch and loss stay referenced through the optimizer step, as in the runner's loop.
    phase("optimizer")
    optimizer.step()
    if tracker is not None:
        tracker.track_optimizer_state(optimizer)
    optimizer.zero_grad(set_to_none=True)
    phase("forward")
