"""LoRA (Hu et al., 2021) through peft: low-rank updates B·A added to chosen Linear layers.

Targets are module groups (``q``, ``v``, ...; see :mod:`autopeft.methods.placement`) resolved
to exact module names, restricted to ``layers``. The trainable count is
``r * (in_features + out_features)`` per targeted Linear (DoRA adds ``out_features`` more
for its magnitude vector), plus an encoder's classification head.
"""

from __future__ import annotations

from typing import Any

from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method
from autopeft.methods.placement import resolve_modules


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    from peft import LoraConfig

    r = _peft.positive_int(params["r"], "r")
    groups = _peft.as_names(params["target_modules"], "target_modules")
    config = LoraConfig(
        task_type=_peft.task_type(info),
        r=r,
        lora_alpha=_peft.positive_int(params["lora_alpha"], "lora_alpha"),
        lora_dropout=_peft.probability(params["lora_dropout"], "lora_dropout"),
        # An exact name list: peft then matches nothing by suffix that we did not mean.
        target_modules=resolve_modules(model, info, groups, params["layers"]),
        use_dora=_peft.boolean(params["use_dora"], "use_dora"),
        use_rslora=_peft.boolean(params["use_rslora"], "use_rslora"),
    )
    return _peft.wrap(model, config, info)


METHOD = register_method(
    Method(
        name="lora",
        description="LoRA: trainable low-rank updates on attention/FFN projections (peft)",
        params={
            "r": 8,
            "lora_alpha": 16,
            "lora_dropout": 0.0,
            "target_modules": ["q", "v"],
            "layers": "all",
            "use_dora": False,
            "use_rslora": False,
        },
        apply=_apply,
        lr_range=(1e-4, 1e-2),
    )
)
