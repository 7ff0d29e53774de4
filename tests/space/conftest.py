"""Shared fixtures of the search-space tests."""

from __future__ import annotations

import pytest

import autopeft.methods.base as base
from autopeft.methods.base import Method

# The first-set methods with their real parameter names and LR ranges, but no apply: the
# loader and sampler are tested against the registry's contract, not the peft code.
FAKE_METHODS = {
    "full": ({}, (1e-5, 1e-4)),
    "lora": (
        {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["q", "v"],
         "layers": "all", "use_dora": False, "use_rslora": False},
        (1e-4, 1e-2),
    ),
    "ia3": ({"target_modules": ["k", "v", "ffn_out"], "feedforward_modules": ["ffn_out"],
             "layers": "all"}, (1e-3, 1e-2)),
    "prefix_tuning": ({"num_virtual_tokens": 20, "prefix_projection": False,
                       "encoder_hidden_size": 512}, (1e-3, 3e-2)),
    "prompt_tuning": ({"num_virtual_tokens": 20}, (1e-3, 1e-1)),
    "ln_tuning": ({"layers": "all"}, (1e-4, 1e-2)),
    "bitfit": ({}, (2e-4, 5e-3)),
}


@pytest.fixture
def fake_registry(monkeypatch):
    """The registry holds FAKE_METHODS only."""
    registry = {
        name: Method(name, f"fake {name}", params, apply=lambda *a: None, lr_range=lr)
        for name, (params, lr) in FAKE_METHODS.items()
    }
    monkeypatch.setattr(base, "_REGISTRY", registry)
    return registry
