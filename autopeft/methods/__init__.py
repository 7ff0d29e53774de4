"""PEFT methods and their registry.

Importing this package registers the built-in methods (one module each). No module here
imports torch, transformers or peft at import time: they are imported when a method is
applied, so ``import autopeft.methods`` stays light.
"""

from __future__ import annotations

from autopeft.methods import (  # noqa: F401  (importing registers each method)
    bitfit,
    full,
    ia3,
    ln_tuning,
    lora,
    prefix_tuning,
    prompt_tuning,
)
from autopeft.methods.base import (
    Method,
    ModelInfo,
    get_method,
    list_methods,
    register_method,
)
from autopeft.methods.counting import ParamCount, count_parameters

__all__ = [
    "Method",
    "ModelInfo",
    "ParamCount",
    "count_parameters",
    "get_method",
    "list_methods",
    "register_method",
]
