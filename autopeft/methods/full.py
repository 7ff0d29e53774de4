"""Full fine-tuning: every parameter trains. The baseline every PEFT method is compared to."""

from __future__ import annotations

from typing import Any

from autopeft.methods.base import Method, ModelInfo, register_method


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    # No peft wrapper: there is nothing to inject, and the plain model saves and loads as is.
    for p in model.parameters():
        p.requires_grad_(True)
    return model


METHOD = register_method(
    Method(
        name="full",
        description="Full fine-tuning: all parameters train",
        params={},
        apply=_apply,
        # Full fine-tuning diverges at PEFT learning rates (TRAPS: chance at 1e-3 on MiniLM).
        lr_range=(1e-5, 1e-4),
    )
)
