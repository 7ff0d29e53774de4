"""BitFit (Ben Zaken et al., 2022): only bias terms train (plus an encoder's head).

Every parameter named ``bias`` trains, as in the paper's code: attention, FFN, LayerNorm and
pooler biases. T5 has no bias anywhere (bias-free Linear layers, RMS norms), so BitFit does
not apply to it: :func:`_check` says so and the search leaves BitFit out for T5.

Why not a peft tuner: peft has no BitFit, and a custom tuner would wrap every Linear and norm
only to hold a trainable copy of a bias the model already owns; the training maths is the
same as flipping ``requires_grad``. Freezing keeps the model a plain transformers model
(saved with ``save_pretrained``). Revisit if BitFit must be combined with peft adapters.
"""

from __future__ import annotations

from typing import Any

from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method


def _is_bias(name: str) -> bool:
    return name.rsplit(".", 1)[-1] == "bias"


def _check(model: Any, info: ModelInfo) -> str | None:
    head = {name for name, _ in _peft.head_parameters(model)}
    if not any(_is_bias(n) and n not in head for n, _ in model.named_parameters()):
        return (
            f"this {info.model_type} model has no bias parameters to train "
            "(T5 uses bias-free Linear layers and RMS norms)"
        )
    return None


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    head = {name for name, _ in _peft.head_parameters(model)}
    for name, p in model.named_parameters():
        p.requires_grad_(_is_bias(name) or name in head)
    if not info.is_seq2seq:
        _peft.ensure_head_trainable(model)
    return model


METHOD = register_method(
    Method(
        name="bitfit",
        description="BitFit: only bias terms (and a classification head) train",
        params={},
        apply=_apply,
        check=_check,
        lr_range=(1e-4, 1e-2),
    )
)
