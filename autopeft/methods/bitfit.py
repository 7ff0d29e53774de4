"""BitFit (Ben Zaken et al., 2022): only bias terms train (plus an encoder's head).

Every module with a bias trains it, as in the paper's code: attention, FFN, LayerNorm and
pooler biases; the count is the number of bias entries. T5 has no bias anywhere (bias-free
Linear layers, RMS norms), so BitFit does not apply to it: :func:`_check` says so and the
search leaves BitFit out for T5.

peft has no BitFit, so it runs on our peft tuner (:mod:`autopeft.methods._tuners.bitfit`,
peft type ``AUTOPEFT_BITFIT``): each biased module gets a zero-initialised bias delta, which
trains exactly like the bias itself while the base model stays frozen. That makes BitFit save
as a peft adapter (``adapter_config.json`` + ``adapter_model.safetensors`` with the deltas and
the head) and load with ``PeftModel.from_pretrained`` like every other method. As with LN
tuning, ``total`` counts the frozen biases and the trained deltas.
"""

from __future__ import annotations

from typing import Any

from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method


def biased_modules(model: Any) -> list[str]:
    """Names of the modules that own a bias parameter, the classification head excluded."""
    import torch

    return [
        name
        for name, module in model.named_modules()
        if isinstance(getattr(module, "bias", None), torch.nn.Parameter)
        and not any(part in _peft.HEAD_NAMES for part in name.split("."))
    ]


def _check(model: Any, info: ModelInfo) -> str | None:
    if not biased_modules(model):
        return (
            f"this {info.model_type} model has no bias parameters to train "
            "(T5 uses bias-free Linear layers and RMS norms)"
        )
    return None


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    from autopeft.methods._tuners import BitFitConfig, register

    register()
    config = BitFitConfig(task_type=_peft.task_type(info), target_modules=biased_modules(model))
    return _peft.wrap(model, config, info)


METHOD = register_method(
    Method(
        name="bitfit",
        description="BitFit: only bias terms (and a classification head) train (own tuner)",
        params={},
        apply=_apply,
        check=_check,
        lr_range=(1e-4, 1e-2),
    )
)
