"""LayerNorm tuning (Zhao et al., 2023) through peft's ``LNTuningConfig``.

Only the normalisation layers train (weight and bias; T5's RMS norms have a weight only).
peft has no default targets for the BERT family, so the norm modules are always resolved
here (:func:`autopeft.methods.placement.resolve_norms`) and passed by exact name. peft keeps a
frozen copy of each tuned norm, so ``total`` grows by the trainable count.
"""

from __future__ import annotations

from typing import Any

from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method
from autopeft.methods.placement import resolve_norms


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    from peft import LNTuningConfig

    config = LNTuningConfig(
        task_type=_peft.task_type(info),
        target_modules=resolve_norms(model, info, params["layers"]),
    )
    # peft warns "Unsupported layer type T5LayerNorm" for T5's RMS norm, yet wraps and trains
    # it correctly (its copy-and-swap needs no knowledge of the layer type; tests check it).
    with _peft.quiet("Unsupported layer type"):
        return _peft.wrap(model, config, info)


METHOD = register_method(
    Method(
        name="ln_tuning",
        description="LayerNorm tuning: only normalisation layers train (peft)",
        params={"layers": "all"},
        apply=_apply,
        lr_range=(1e-4, 1e-2),
    )
)
