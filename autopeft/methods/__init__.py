"""PEFT methods and their registry.

Importing this package registers the built-in methods (one module per method family). No
module here imports torch, transformers or peft at import time: they are imported when a
method is applied, so ``import autopeft.methods`` stays light. Methods peft lacks run on our
custom peft tuners (the private ``_tuners`` package, imported on use); every method saves and
loads in peft's file layout (:func:`save_adapter`, :func:`load_adapter`).
"""

from __future__ import annotations

from autopeft.methods import (  # noqa: F401  (importing registers each method)
    adapters,
    bitfit,
    composite,
    full,
    ia3,
    ln_tuning,
    lokr,
    lora,
    peft_tuners,
    prefix_tuning,
    prompt_tuning,
    vera,
)
from autopeft.methods.base import (
    Method,
    ModelInfo,
    effective_params,
    get_method,
    list_methods,
    register_method,
)
from autopeft.methods.counting import ParamCount, count_parameters
from autopeft.methods.saving import load_adapter, register_tuners, save_adapter

__all__ = [
    "Method",
    "ModelInfo",
    "ParamCount",
    "count_parameters",
    "effective_params",
    "get_method",
    "list_methods",
    "load_adapter",
    "register_method",
    "register_tuners",
    "save_adapter",
]
