"""VeRA (Kopiczko et al., 2024) through peft: shared frozen random projections, trained scales.

Every targeted Linear computes ``W x + diag(b) B diag(d) A x``: ``A`` (r x in) and ``B``
(out x r) are random, frozen and shared by all layers (buffers, not parameters, regenerated
from ``projection_prng_key`` and also saved), so only the vectors ``d`` (``r``) and ``b``
(``out_features``) train: ``r + out_features`` per targeted Linear. VeRA pays for its tiny
count with a large rank (peft's default ``r=256``).
"""

from __future__ import annotations

from typing import Any

from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method
from autopeft.methods.placement import resolve_modules


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    from peft import VeraConfig

    groups = _peft.as_names(params["target_modules"], "target_modules")
    config = VeraConfig(
        task_type=_peft.task_type(info),
        r=_peft.positive_int(params["r"], "r"),
        vera_dropout=_peft.probability(params["vera_dropout"], "vera_dropout"),
        target_modules=resolve_modules(model, info, groups, params["layers"]),
        # Saved with the adapter, so loading does not depend on the PRNG of another machine.
        save_projection=True,
    )
    return _peft.wrap(model, config, info)


METHOD = register_method(
    Method(
        name="vera",
        description="VeRA: shared frozen random low-rank projections with trained scales (peft)",
        params={"r": 256, "vera_dropout": 0.0, "target_modules": ["q", "v"], "layers": "all"},
        apply=_apply,
        # VeRA's vectors need larger steps than LoRA's matrices (the paper uses 1e-2 to 4e-2).
        lr_range=(1e-3, 5e-2),
    )
)
