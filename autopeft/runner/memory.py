"""Peak memory of one trial, measured in the unit the planner predicts: bytes of live tensors.

Three meters; ``PeakMemory.meter`` names the one used (stored in a trial's extra as
``peak_memory_meter``), ``PeakMemory.kind`` says the same in words (the ``memory_kind`` column):

* ``cuda_allocated`` (kind ``cuda_max_allocated``): ``torch.cuda.max_memory_allocated``
  after ``reset_peak_memory_stats``, summed over the visible devices: the peak of bytes held
  by tensors (weights, grads, optimizer state, activations), in 512-byte blocks.
* ``cpu_tensors`` (kind ``cpu_live_tensor_bytes``), the CPU default: the peak of the bytes
  of live tensor storages, counted by :class:`autopeft.memory.tracker.AllocationTracker`,
  the very bookkeeping the predictor runs on fake tensors (so a CPU profile's fit or no-fit
  decision compares like with like). It is a dispatch mode: it sees every tensor an operator
  returns and drops it when its storage is freed; the model's parameters and buffers are
  registered by :meth:`PeakMemory.track`. Why not torch's own counters: the CPU allocator
  keeps none outside the profiler, whose event log grows with every operator of the trial
  (``scripts/bench_memory.py`` measures this meter's cost per step against the RSS meter).
  The resident-set figure below is read beside it at no cost and kept as
  :attr:`PeakMemory.rss_peak_bytes`.
* ``cpu_rss`` (kinds ``cpu_weights_plus_rss_growth`` / ``..._sampled_rss_growth``): the
  model's weights and buffers, counted exactly, plus the growth of the process's resident set
  while it trains and evaluates: the kernel's high-water mark (``VmHWM``, reset through
  ``/proc/self/clear_refs``) minus the resident set when the meter starts (after freed heap
  pages went back to the OS, so reused memory still shows as growth, also in a warm worker).
  It counts every byte training made resident (allocator slack, Python objects, library
  buffers too): an upper bound, about twice the tensor bytes on small models. Where
  ``clear_refs`` cannot be written (non-Linux, restricted /proc), a 10 ms sampling thread of
  the RSS stands in.

Every meter also answers :meth:`PeakMemory.current` (bytes alive now), cheap enough to poll
for a live display.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

METERS = ("cuda_allocated", "cpu_tensors", "cpu_rss")
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


class _RssGrowth:
    """Weights + resident-set growth since :meth:`start` (the ``cpu_rss`` figure)."""

    def __init__(self, base_bytes: int) -> None:
        self.base_bytes = base_bytes
        self.hwm = False
        self._baseline = 0
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._sampled_peak = 0

    def start(self) -> str:
        _trim_heap()
        self._baseline = _rss_bytes()
        if _reset_hwm():
            self.hwm = True
            return "cpu_weights_plus_rss_growth"
        self._sampled_peak = self._baseline
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return "cpu_weights_plus_sampled_rss_growth"

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self._sampled_peak = max(self._sampled_peak, _rss_bytes())

    def peak(self) -> int:
        top = (_read_status_kib("VmHWM") or _rss_bytes()) if self.hwm else max(
            self._sampled_peak, _rss_bytes())
        return self.base_bytes + max(0, top - self._baseline)

    def current(self) -> int:
        return self.base_bytes + max(0, _rss_bytes() - self._baseline)

    def stop(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=1)


class PeakMemory:
    """Context manager: ``meter.track(model); with meter: ...``, then ``meter.peak_bytes``.

    Args:
        device: The torch device (or its type name) the trial trains on.
        base_bytes: ``cpu_rss`` only: bytes already resident that count (the weights);
            :meth:`track` sets it.
        cpu_meter: ``cpu_tensors`` (default) or ``cpu_rss``: what measures a CPU trial.

    Attributes:
        meter: The meter used (one of :data:`METERS`), set on entering.
        kind: The same in words, as stored in ``memory_kind``.
        peak_bytes: The peak, set on leaving (:meth:`read` gives it inside the block).
        rss_peak_bytes: ``cpu_tensors`` only: the ``cpu_rss`` figure measured beside it,
            for comparison (None elsewhere).
    """

    def __init__(self, device: Any, base_bytes: int = 0, *, cpu_meter: str = "cpu_tensors"
                 ) -> None:
        if cpu_meter not in ("cpu_tensors", "cpu_rss"):
            raise ValueError(f"cpu_meter must be cpu_tensors or cpu_rss, not {cpu_meter!r}")
        self.device = device
        self.base_bytes = base_bytes
        self.cpu_meter = cpu_meter
        self.meter: str = ""
        self.kind: str = ""
        self.peak_bytes: int = 0
        self.rss_peak_bytes: int | None = None
        self._models: list[Any] = []
        self._tracker: Any = None
        self._rss: _RssGrowth | None = None

    def _is_cuda(self) -> bool:
        return getattr(self.device, "type", str(self.device)).startswith("cuda")

    def track(self, model: Any) -> None:
        """Count ``model``'s parameters and buffers (call before entering; once per model)."""
        self._models.append(model)
        self.base_bytes += tensor_bytes(model)

    def __enter__(self) -> PeakMemory:
        if self._is_cuda():
            import torch

            for i in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(i)
            self.meter, self.kind = "cuda_allocated", "cuda_max_allocated"
            return self
        self._rss = _RssGrowth(self.base_bytes)
        rss_kind = self._rss.start()
        if self.cpu_meter == "cpu_rss":
            self.meter, self.kind = "cpu_rss", rss_kind
            return self
        from autopeft.memory.tracker import AllocationTracker

        # Exact bytes (granularity 1): the CPU allocator rounds nothing, and the predictor
        # counts a CPU profile's trials the same way.
        self._tracker = AllocationTracker(granularity=1)
        for model in self._models:
            self._tracker.track_model(model)
        self._tracker.remove_hooks()  # the total is all we read: no grad relabelling needed
        self._tracker.__enter__()
        self.meter, self.kind = "cpu_tensors", "cpu_live_tensor_bytes"
        return self

    def read(self) -> int:
        """Peak so far (also valid inside the block)."""
        if self.meter == "cuda_allocated":
            import torch

            return sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))
        if self.meter == "cpu_tensors":
            return int(self._tracker.peak_bytes)
        return self._rss.peak() if self._rss is not None else 0

    def current(self) -> int:
        """Bytes alive now, as the meter counts them (0 before entering); cheap to poll."""
        if self.meter == "cuda_allocated":
            import torch

            return sum(torch.cuda.memory_allocated(i) for i in range(torch.cuda.device_count()))
        if self.meter == "cpu_tensors":
            return int(self._tracker.total)
        return self._rss.current() if self._rss is not None else 0

    def __exit__(self, *exc: object) -> None:
        if self._tracker is not None:
            self._tracker.__exit__(*exc)
        self.peak_bytes = self.read()
        if self._rss is not None:
            if self.meter == "cpu_tensors":
                self.rss_peak_bytes = self._rss.peak()
            self._rss.stop()


def tensor_bytes(model: Any) -> int:
    """Bytes of a model's parameters and buffers, each storage counted once (tied weights)."""
    from autopeft import tensors

    return tensors.tensor_bytes([*model.parameters(), *model.buffers()])
