"""LoKr through peft: a Kronecker-product update ``W + scale * (W1 (x) W2)`` on chosen Linears.

This is the survey's "KronA" (Edalati et al., 2022), which it ran as peft's LoKr on ``q`` and
``v`` with ``r=8``. peft factors each dimension into the divisor pair closest to its square
root (``out = a*b``, ``in = c*d``, ``a <= b``, ``c <= d``): ``W1`` is the full ``a x c``
matrix, and ``W2`` (``b x d``) is itself low-rank, ``r * (b + d)`` parameters, when
``r < max(b, d) / 2``, else full. ``alpha`` scales the update by ``alpha / r``.
"""

from __future__ import annotations

from typing import Any

from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method
from autopeft.methods.placement import resolve_modules


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    from peft import LoKrConfig

    groups = _peft.as_names(params["target_modules"], "target_modules")
    config = LoKrConfig(
        task_type=_peft.task_type(info),
        r=_peft.positive_int(params["r"], "r"),
        alpha=_peft.positive_int(params["alpha"], "alpha"),
        rank_dropout=_peft.probability(params["rank_dropout"], "rank_dropout"),
        module_dropout=_peft.probability(params["module_dropout"], "module_dropout"),
        target_modules=resolve_modules(model, info, groups, params["layers"]),
    )
    return _peft.wrap(model, config, info)


METHOD = register_method(
    Method(
        name="lokr",
        description="LoKr (KronA): Kronecker-product updates on attention/FFN projections (peft)",
        params={
            "r": 8,
            "alpha": 8,
            "rank_dropout": 0.0,
            "module_dropout": 0.0,
            "target_modules": ["q", "v"],
            "layers": "all",
        },
        apply=_apply,
        lr_range=(1e-4, 1e-2),
    )
)
