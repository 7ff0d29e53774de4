"""Memory of a training trial: predicted from the model config (no weights, no allocation).

:func:`predict_peak_memory` traces two training steps on fake tensors and reports the peak
bytes of live tensors with a breakdown; :func:`fits` checks a prediction against a hardware
profile. Importing this package does not import torch.
"""

from __future__ import annotations

from autopeft.memory.predict import (
    DEFAULT_TARGET_LEN,
    MemoryPrediction,
    fits,
    predict_peak_memory,
)

__all__ = ["DEFAULT_TARGET_LEN", "MemoryPrediction", "fits", "predict_peak_memory"]
