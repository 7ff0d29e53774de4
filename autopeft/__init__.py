"""autopeft: automated, memory-aware search over parameter-efficient fine-tuning methods.

The top level stays light: heavy libraries (torch, ray, transformers, peft, pynvml) are
imported only inside the functions that need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"

from autopeft.budget import Budget
from autopeft.errors import AutopeftError

__all__ = ["AutopeftError", "Budget", "__version__", "load_adapter"]


def load_adapter(base_model: Any, path: str | Path, *, is_trainable: bool = False) -> Any:
    """Load what ``autopeft export`` wrote (any method) onto ``base_model``.

    autopeft's own peft tuner types (bottleneck adapters, Compacter, MAM, UniPELT, BitFit,
    prefix tuning, AutoPEFT) are registered with peft first: plain
    ``PeftModel.from_pretrained`` without that fails with ``KeyError: 'AUTOPEFT_ADAPTER'``.

    Args:
        base_model: A fresh model of the architecture the trial trained (the same weights
            it started from), e.g. ``AutoModelForSequenceClassification.from_pretrained(...)``.
        path: The exported folder.
        is_trainable: Keep the adapter trainable (to train on); default is frozen.

    Returns:
        A ``peft.PeftModel`` (for full fine-tuning: the model loaded from ``path``).
    """
    from autopeft.methods.saving import load_adapter as load

    return load(base_model, path, is_trainable=is_trainable)
