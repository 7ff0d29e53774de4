"""GPU detection through NVML: the only module that imports ``pynvml`` (nvidia-ml-py).

NVML answers without CUDA or torch: GPU count, names, total and free memory, compute
capability and the driver version. A machine without a GPU or without the NVML library
gets ``gpus == []`` and the reason (``NVMLError_LibraryNotFound`` is what a GPU-less
machine raises at ``nvmlInit``). ``CUDA_VISIBLE_DEVICES`` given as indices restricts the
GPUs reported, as it restricts what torch sees.

Every function takes an optional ``nvml`` stand-in module: tests pass a fake one.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as NVML reports it.

    Attributes:
        index: NVML device index.
        name: Marketing name (``NVIDIA A100-SXM4-80GB``).
        total_memory: Device memory in bytes.
        free_memory: Memory not in use by any process, in bytes.
        compute_capability: ``(major, minor)``, or None when the driver cannot tell.
    """

    index: int
    name: str
    total_memory: int
    free_memory: int
    compute_capability: tuple[int, int] | None


@dataclass(frozen=True)
class Detection:
    """What NVML found.

    Attributes:
        gpus: The visible GPUs (empty without GPU or NVML).
        driver: Driver version, when NVML initialised.
        reason: Why no GPU was found (None when there are GPUs).
    """

    gpus: list[GpuInfo] = field(default_factory=list)
    driver: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _visible_indices() -> set[int] | None:
    """Indices allowed by ``CUDA_VISIBLE_DEVICES`` (None: all, or given as UUIDs)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or not visible.strip():
        return None
    parts = [p.strip() for p in visible.split(",")]
    if not all(p.isdigit() for p in parts):
        return None
    return {int(p) for p in parts}


def detect(nvml: Any | None = None) -> Detection:
    """Query NVML for the visible GPUs.

    Args:
        nvml: A stand-in for the ``pynvml`` module (tests), or None for the real one.

    Returns:
        The GPUs found, or none with the reason.
    """
    if nvml is None:
        try:
            import pynvml as nvml  # type: ignore[no-redef]
        except ImportError:
            return Detection(reason="nvidia-ml-py (pynvml) is not installed")
    try:
        nvml.nvmlInit()
    except Exception as exc:  # pynvml raises NVMLError subclasses built at run time
        return Detection(reason=f"{type(exc).__name__}: {_text(exc) or 'NVML unavailable'}")
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        allowed = _visible_indices()
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            if allowed is not None and i not in allowed:
                continue
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                cc = tuple(nvml.nvmlDeviceGetCudaComputeCapability(handle))
            except Exception:  # older drivers lack the call
                cc = None
            gpus.append(
                GpuInfo(i, _text(nvml.nvmlDeviceGetName(handle)), int(mem.total), int(mem.free), cc)
            )
        return Detection(gpus=gpus, driver=driver, reason=None if gpus else "NVML found no GPU")
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


def hardware_summary(nvml: Any | None = None) -> dict[str, Any]:
    """What a study stores about the machine it ran on: host, CPUs, RAM and GPUs."""
    import platform

    import psutil

    det = detect(nvml)
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "memory_bytes": int(psutil.virtual_memory().total),
        "gpus": [asdict(g) for g in det.gpus],
        "driver": det.driver,
        "gpu_reason": det.reason,
    }
