"""Warm trial workers: what a worker process keeps from one trial to the next.

Ray Tune runs the next trial in the same worker process when it can (``reuse_actors``), so
torch, transformers and peft are imported once per worker. This module also keeps the base
model last loaded, pristine, on the CPU, and the tokenizer: each trial gets a deep copy of
the model, never the kept one, so nothing a trial does (wrapping, training, moving it to a
GPU) reaches the next. The torch RNG state right after loading is kept as well and restored
on a hit, so a trial in a warm worker draws the same numbers (head initialisation, dropout,
batch order) as it would in a fresh one.

Only a model that takes less than a quarter of the memory available is kept (the kept copy
and the trial's copy coexist); a larger one is loaded from disk for every trial.
"""

from __future__ import annotations

from typing import Any

_KEPT: dict[str, Any] = {}
KEEP_FRACTION = 0.25


def clear() -> None:
    """Forget what this process keeps (tests use it to compare with a fresh worker)."""
    _KEPT.clear()


def tokenizer(ref: Any, *, trust_remote_code: bool) -> Any:
    """The model's tokenizer, loaded once per worker."""
    from autopeft.modeling import load_tokenizer

    key = (ref.path, trust_remote_code)
    kept = _KEPT.get("tokenizer")
    if kept is None or kept[0] != key:
        kept = _KEPT["tokenizer"] = (key, load_tokenizer(ref, trust_remote_code=trust_remote_code))
    return kept[1]


def base_model(ref: Any, *, num_labels: int, trust_remote_code: bool) -> Any:
    """A fresh copy of the base model, as :func:`autopeft.modeling.build_model` returns it."""
    import copy

    import torch

    from autopeft.modeling import build_model

    key = (ref.path, num_labels, trust_remote_code)
    before = torch.get_rng_state()
    kept = _KEPT.get("model")
    if kept is not None and kept[0] == key and torch.equal(kept[1], before):
        torch.set_rng_state(kept[3])
        return copy.deepcopy(kept[2])
    _KEPT.pop("model", None)  # free the old one before loading the new
    model = build_model(ref, num_labels=num_labels, trust_remote_code=trust_remote_code)
    if _small_enough(model):
        _KEPT["model"] = (key, before, copy.deepcopy(model), torch.get_rng_state())
    return model


def _small_enough(model: Any) -> bool:
    import psutil

    from autopeft.runner.memory import tensor_bytes

    return tensor_bytes(model) < KEEP_FRACTION * psutil.virtual_memory().available
