"""LoRA (Hu et al., 2021) through peft: low-rank updates B·A added to chosen Linear layers.

Targets are module groups (``q``, ``v``, ...; see :mod:`autopeft.methods.placement`) resolved
to exact module names, restricted to ``layers``. The trainable count is
``r * (in_features + out_features)`` per targeted Linear (DoRA adds ``out_features`` more
for its magnitude vector), plus an encoder's classification head; with ``init_lora_weights``
``mica`` B is frozen and only ``r * in_features`` per Linear trains.

``init_lora_weights`` searches peft's initialisations that need no data (see ``INITS``); the
others are refused with the reason in ``INITS_EXCLUDED``.
"""

from __future__ import annotations

import re
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method
from autopeft.methods.placement import resolve_modules

# peft 0.21's init_lora_weights values that need no data: "default" (peft's True: Kaiming A,
# B = 0; a string because search-space values must have the default's type), "gaussian",
# "orthogonal", "mica" (B from the smallest singular vectors, frozen), and the ones that move
# the principal part of each weight into the adapter, mutating the base weights ("pissa",
# "pissa_niter_N" fast SVD, "olora" QR). Those mutating ones are saved through peft's
# conversion to a plain LoRA (see saving.py), so a saved adapter loads on the original weights.
INITS = ("default", "gaussian", "orthogonal", "mica", "pissa", "pissa_niter_N", "olora")
MUTATING = re.compile(r"^(pissa|pissa_niter_\d+|olora)$")
# What peft offers that we do not, and why (README shows this).
INITS_EXCLUDED = {
    False: "random A and B, so the model changes before training: peft's debugging option",
    "eva": "data-driven: needs initialize_lora_eva_weights over batches of activations; "
    "apply() sees the model only, not the training data",
    "corda": "data-driven: needs preprocess_corda with a calibration run over batches",
    "lora_ga": "data-driven: needs gradients estimated on training batches before training",
    "loftq": "for quantised base models (it re-quantises W); our base models are not quantised",
}
INIT_ATTR = "autopeft_initial_adapter"


def _init(value: Any, use_dora: bool) -> bool | str:
    if value is True or value == "default":
        return True
    if isinstance(value, str) and (value in INITS[1:4] or MUTATING.match(value)):
        if use_dora and MUTATING.match(str(value)):
            # DoRA normalises by the norm of the (mutated) weight: the saved adapter would not
            # convert to a LoRA of the original weights.
            raise AutopeftError(
                f"init_lora_weights {value!r} mutates the base weights and cannot be saved with "
                "use_dora; use init_lora_weights default, gaussian or orthogonal with DoRA"
            )
        return value
    shown = ", ".join(map(repr, INITS))
    why = INITS_EXCLUDED.get(value) if isinstance(value, (bool, str)) else None
    raise AutopeftError(
        f"init_lora_weights {value!r} is not supported" + (f" ({why})" if why else "")
        + f"; use one of {shown} (pissa_niter_N with N >= 0 subspace iterations)"
    )


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    from peft import LoraConfig, get_peft_model_state_dict

    r = _peft.positive_int(params["r"], "r")
    use_dora = _peft.boolean(params["use_dora"], "use_dora")
    init = _init(params["init_lora_weights"], use_dora)
    groups = _peft.as_names(params["target_modules"], "target_modules")
    config = LoraConfig(
        task_type=_peft.task_type(info),
        r=r,
        lora_alpha=_peft.positive_int(params["lora_alpha"], "lora_alpha"),
        lora_dropout=_peft.probability(params["lora_dropout"], "lora_dropout"),
        # An exact name list: peft then matches nothing by suffix that we did not mean.
        target_modules=resolve_modules(model, info, groups, params["layers"]),
        use_dora=use_dora,
        use_rslora=_peft.boolean(params["use_rslora"], "use_rslora"),
        init_lora_weights=init,
    )
    peft_model = _peft.wrap(model, config, info)
    if isinstance(init, str) and MUTATING.match(init):
        # The initial adapter, kept for peft's conversion at save time (W = W_res + B0 A0).
        initial = get_peft_model_state_dict(peft_model)
        setattr(peft_model, INIT_ATTR, {k: v.detach().clone() for k, v in initial.items()})
    return peft_model


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
            "init_lora_weights": "default",
        },
        apply=_apply,
        lr_range=(1e-4, 1e-2),
    )
)
