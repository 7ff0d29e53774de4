"""The one dtype policy: what a trial computes in, from ``--precision`` and the device.

The trial runner (on a real device), the memory planner (on a hardware profile) and
``autopeft estimate`` all ask here, so a plan is made for the dtype the trial will use.

On CPU a trial trains in fp32: ``auto`` means fp32 there, and an explicit ``bf16`` or
``fp16`` is refused (:class:`AutopeftError`, exit 2) rather than silently trained in fp32
while the study records and plans for 16 bits (CPU autocast to 16 bits is also slower than
fp32 on most CPUs, so honouring it would buy nothing). On CUDA ``auto`` is bf16 where the GPU
supports it, else fp16.

What is held in which dtype (:func:`autopeft.modeling.hold_frozen_in` does it, for the
runner and the predictor alike): the frozen base weights in the training dtype (bf16 halves
them, as PEFT users load the base), the trainable parameters, their gradients and the
optimizer state in fp32; the forward and backward run under autocast to the training dtype.
"""

from __future__ import annotations

from typing import Any

from autopeft.errors import AutopeftError

DTYPES = ("fp32", "bf16", "fp16")
PRECISIONS = ("auto", *DTYPES)


def training_dtype(precision: str, device: str, *, bf16: bool, fp16: bool = True) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``precision`` on a ``device`` type (cpu, cuda).

    Args:
        precision: ``auto`` or one of :data:`DTYPES`.
        device: ``cpu`` or ``cuda`` (anything but ``cuda`` computes in fp32).
        bf16: Whether the device supports bf16 (``auto`` picks it first).
        fp16: Whether the device supports fp16.

    Raises:
        AutopeftError: an unknown precision, or ``bf16`` / ``fp16`` asked on a CPU.
    """
    if precision not in PRECISIONS:
        raise AutopeftError(f"unknown precision '{precision}'; known: {', '.join(PRECISIONS)}")
    if device != "cuda":
        if precision in ("auto", "fp32"):
            return "fp32"
        raise AutopeftError(
            f"--precision {precision} needs a CUDA GPU: trials on {device} train in fp32; "
            "use --precision auto or fp32 there (or plan for a GPU with --profile NAME)"
        )
    if precision != "auto":
        return precision
    return "bf16" if bf16 else ("fp16" if fp16 else "fp32")


def profile_dtype(precision: str, profile: Any) -> str:
    """The dtype trials planned for a hardware profile will compute in."""
    return training_dtype(precision, profile.device, bf16=profile.bf16, fp16=profile.fp16)


def device_dtype(precision: str, device: Any) -> str:
    """The dtype a trial computes in on a real torch ``device``."""
    bf16 = False
    if device.type == "cuda":
        import torch

        bf16 = torch.cuda.is_bf16_supported()
    return training_dtype(precision, device.type, bf16=bf16)


def torch_dtype(name: str) -> Any:
    """The torch dtype of one of :data:`DTYPES`."""
    import torch

    if name not in DTYPES:
        raise AutopeftError(f"unknown dtype '{name}'; known: {', '.join(DTYPES)}")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
