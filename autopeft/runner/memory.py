"""Peak memory of one trial, measured.

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` — the peak of
  bytes held by tensors (weights, grads, optimizer state, activations), summed over the
  visible devices. Reported as ``cuda_max_allocated``.
* CPU: the model's weights and buffers, counted exactly (``base_bytes``), plus the growth of
  the process's resident set while it trains and evaluates: the kernel's high-water mark
  (``VmHWM``, reset through ``/proc/self/clear_refs``) minus the resident set when the meter
  starts (after the model was loaded, and after freed heap pages went back to the OS, so
  that reused memory still shows as growth, also in a warm worker). The growth counts every
  byte training made resident (grads, optimizer state, activations, allocator slack), so it
  is an honest upper bound of tensor memory rather than a tensor-exact count. Reported as
  ``cpu_weights_plus_rss_growth``.
  Where ``clear_refs`` cannot be written (non-Linux, restricted /proc), a 10 ms sampling
  thread of the RSS is used instead (``cpu_weights_plus_sampled_rss_growth``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _read_status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _rss_bytes() -> int:
    value = _read_status_kib("VmRSS")
    if value is not None:
        return value
    import psutil

    return int(psutil.Process().memory_info().rss)


def _trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc's ``malloc_trim``; elsewhere nothing).

    A warm worker has freed the previous trial's tensors, and loading freed its buffers: if
    the heap kept those pages, training would reuse them without growing the resident set,
    and the meter would see less than training used.
    """
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


def _reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text("5")  # "5" resets the peak RSS (Linux >= 4.0)
    except OSError:
        return False
    return _read_status_kib("VmHWM") is not None


class PeakMemory:
    """Context manager: ``with PeakMemory(device) as pm: ...; pm.peak_bytes, pm.kind``."""

    def __init__(self, device: Any, base_bytes: int = 0) -> None:
        self.device = device
        self.base_bytes = base_bytes  # CPU: bytes already resident that count (weights)
        self.peak_bytes: int = 0
        self.kind: str = ""
        self._baseline = 0
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._sampled_peak = 0

    def _is_cuda(self) -> bool:
        return getattr(self.device, "type", str(self.device)).startswith("cuda")

    def __enter__(self) -> PeakMemory:
        if self._is_cuda():
            import torch

            for i in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(i)
            self.kind = "cuda_max_allocated"
            return self
        _trim_heap()
        self._baseline = _rss_bytes()
        if _reset_hwm():
            self.kind = "cpu_weights_plus_rss_growth"
        else:
            self.kind = "cpu_weights_plus_sampled_rss_growth"
            self._sampled_peak = self._baseline
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self._sampled_peak = max(self._sampled_peak, _rss_bytes())

    def read(self) -> int:
        """Peak so far (also valid inside the block)."""
        if self.kind == "cuda_max_allocated":
            import torch

            return sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))
        if self.kind == "cpu_weights_plus_rss_growth":
            hwm = _read_status_kib("VmHWM") or _rss_bytes()
            return self.base_bytes + max(0, hwm - self._baseline)
        peak = max(self._sampled_peak, _rss_bytes())
        return self.base_bytes + max(0, peak - self._baseline)

    def current(self) -> int:
        """Bytes held now, counted as :meth:`read` counts the peak (live progress)."""
        if self.kind == "cuda_max_allocated":
            import torch

            return sum(torch.cuda.memory_allocated(i) for i in range(torch.cuda.device_count()))
        return self.base_bytes + max(0, _rss_bytes() - self._baseline)

    def __exit__(self, *exc: object) -> None:
        self.peak_bytes = self.read()
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=1)


def tensor_bytes(model: Any) -> int:
    """Bytes of a model's parameters and buffers, each storage counted once (tied weights)."""
    from autopeft import tensors

    return tensors.tensor_bytes([*model.parameters(), *model.buffers()])
