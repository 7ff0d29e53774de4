"""GPU detection through NVML: the only module that imports ``pynvml`` (nvidia-ml-py).

A machine without a GPU or without the NVML library gets ``gpus == []`` and the reason
(``NVMLError_LibraryNotFound`` is what a GPU-less machine raises).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_memory: int
    free_memory: int
    compute_capability: tuple[int, int] | None


@dataclass(frozen=True)
class Detection:
    gpus: list[GpuInfo] = field(default_factory=list)
    driver: str | None = None
    reason: str | None = None  # why no GPU was found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def detect(nvml: Any | None = None) -> Detection:
    """Query NVML; ``nvml`` may be a stand-in module (tests use a fake)."""
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
        gpus = []
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        allowed = None
        if visible is not None and visible.strip() and all(
            p.strip().isdigit() for p in visible.split(",")
        ):
            allowed = {int(p) for p in visible.split(",")}
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
    """What a study stores about the machine it ran on."""
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
