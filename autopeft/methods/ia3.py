"""IA3 (Liu et al., 2022) through peft: learned vectors that rescale activations.

The default scales keys and values (a vector of ``out_features`` per ``k``/``v`` projection)
and the FFN intermediate activation — the *input* of the FFN output projection, which is why
``ffn_out`` is also a feedforward module (a vector of its ``in_features``). This is peft's own
T5 default (``k``, ``v``, ``wo`` with ``wo`` feedforward) and gives 344,064 trainable
parameters on t5-large.
"""

from __future__ import annotations

from typing import Any

from autopeft.errors import AutopeftError
from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method
from autopeft.methods.placement import resolve_modules


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    from peft import IA3Config

    layers = params["layers"]
    targets = resolve_modules(
        model, info, _peft.as_names(params["target_modules"], "target_modules"), layers
    )
    ff_groups = params["feedforward_modules"]
    # An empty list is allowed: IA3 then only scales outputs of the targeted modules.
    feedforward = (
        resolve_modules(model, info, _peft.as_names(ff_groups, "feedforward_modules"), layers)
        if ff_groups
        else []
    )
    stray = sorted(set(feedforward) - set(targets))
    if stray:
        raise AutopeftError(
            f"feedforward_modules {list(ff_groups)} must also be in target_modules "
            f"{list(params['target_modules'])}; not targeted: {', '.join(stray[:3])}"
        )
    config = IA3Config(
        task_type=_peft.task_type(info),
        target_modules=targets,
        feedforward_modules=feedforward,
    )
    return _peft.wrap(model, config, info)


METHOD = register_method(
    Method(
        name="ia3",
        description="IA3: learned rescaling of keys, values and FFN activations (peft)",
        params={
            "target_modules": ["k", "v", "ffn_out"],
            "feedforward_modules": ["ffn_out"],
            "layers": "all",
        },
        apply=_apply,
        lr_range=(1e-4, 3e-2),
    )
)
