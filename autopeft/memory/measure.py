"""Measured peak tensor memory of real training steps, to check predictions against.

The trial runner's CPU number (growth of the resident set) counts allocator slack, Python
objects and library buffers too, so it cannot validate a tensor-exact prediction. This
module measures what the prediction models, from real allocations: torch's profiler with
``profile_memory=True`` records every allocation and free of the CPU allocator together with
the allocator's running total of live bytes (``total_allocated``). The peak is the highest
running total during the steps, relative to the first event, plus the bytes of the tensors
alive when measurement started (parameters, buffers, optimizer state), which the profiler
never sees being allocated. Garbage is collected first: the allocator's total is
process-wide, and blocks of an earlier profiling session freed during this one would lower it.

The trial runner's own CPU meter (:class:`autopeft.runner.memory.PeakMemory`, ``cpu_tensors``)
can run inside the same steps (``meter=``), so the benchmark checks it against the profiler.

On a GPU, :func:`measure_device_peak` reads ``torch.cuda.max_memory_allocated`` over real
steps, as the trial runner records it; its memory-stats boundary can be replaced by a fake.

Used by ``scripts/bench_memory.py`` and the memory tests.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from typing import Any

from autopeft.memory.step import make_optimizer, training_step


@dataclass(frozen=True)
class MeasuredPeak:
    """Peak of live CPU tensor bytes over some training steps.

    Attributes:
        peak_bytes: ``baseline_bytes`` + the highest growth of live bytes during the steps.
        baseline_bytes: Bytes of the model's parameters and buffers when measuring began.
        allocations: Allocation events the profiler recorded.
        meter_bytes: The peak the runner's meter read over the same steps (None without one).
    """

    peak_bytes: int
    baseline_bytes: int
    allocations: int
    meter_bytes: int | None = None


def _storage_bytes(tensors: Any) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


def _allocation_events(prof: Any) -> list[tuple[int, int, int]]:
    """(start ns, signed size, allocator total after the event) of every CPU allocation."""
    from torch._C._profiler import _EventType

    found: list[tuple[int, int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        if event.tag == _EventType.Allocation:
            fields = event.typed[1]
            if fields.device.type == "cpu":
                found.append((event.start_time_ns, fields.alloc_size, fields.total_allocated))
        stack.extend(event.children)
    found.sort(key=lambda e: e[0])
    return found


def measure_training_peak(
    model: Any, batch_fn: Any, *, optimizer: str = "adamw", steps: int = 2, meter: Any = None
) -> MeasuredPeak:
    """Run ``steps`` real training steps on CPU and measure the peak of live tensor bytes.

    Args:
        model: A real model on CPU, in train mode, with the method applied.
        batch_fn: Called once per step to create the batch.
        optimizer: Optimizer name (see :func:`autopeft.memory.step.make_optimizer`); the
            for-loop implementation, as torch uses on CPU.
        steps: Training steps; at least 2 so that AdamW's state (allocated in the first
            step) is alive through a whole step.
        meter: A CPU :class:`~autopeft.runner.memory.PeakMemory` to run inside the same steps
            (it is given ``model`` to track); its peak is returned as ``meter_bytes``.

    Returns:
        The measured peak.
    """
    import torch

    if steps < 2:
        raise ValueError("measure at least 2 steps: optimizer state appears in the first")
    opt = make_optimizer(optimizer, model)
    baseline = _storage_bytes([*model.parameters(), *model.buffers()])
    # Garbage from earlier work (a previous model's reference cycles) freed by a collection
    # during the steps would lower the allocator's total and hide part of the growth.
    gc.collect()
    activities = [torch.profiler.ProfilerActivity.CPU]
    if meter is not None:
        meter.track(model)
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        with meter if meter is not None else contextlib.nullcontext():
            for _ in range(steps):
                training_step(model, opt, batch_fn)
    events = _allocation_events(prof)
    if not events:
        raise RuntimeError("the profiler recorded no CPU allocation")
    # The allocator's total is process-wide and only counts blocks allocated while memory
    # profiling was on, so the growth is measured from the state before the first event.
    start = events[0][2] - events[0][1]
    growth = max(total for _, _, total in events) - start
    return MeasuredPeak(baseline + max(0, growth), baseline, len(events),
                        meter.peak_bytes if meter is not None else None)


def measure_device_peak(
    build: Any, batch_fn: Any, *, dtype: str = "fp32", optimizer: str = "adamw", steps: int = 2,
    device: str = "cuda", stats: Any = None,
) -> int:
    """Peak allocated device bytes over real training steps, as a GPU trial records it.

    ``max_memory_allocated`` after ``reset_peak_memory_stats``, taken once the model is built
    (so the build's own transients do not count, its weights do), minus what was allocated
    before the build (nothing in a fresh process). The model is freed afterwards.

    Args:
        build: Returns the model on ``device`` with its method applied and its frozen
            weights in the training dtype (:func:`autopeft.modeling.hold_frozen_in`).
        batch_fn: Called once per step; returns the batch on ``device``.
        dtype: Training dtype (autocast to it on ``device``).
        optimizer: As :func:`autopeft.memory.step.make_optimizer`; torch's ``foreach``
            kernels on CUDA, as the runner's AdamW uses there and the predictor assumes.
        steps: Training steps (AdamW's state appears in the first).
        device: ``cuda``; ``cpu`` only with a fake ``stats`` (tests).
        stats: The memory-stats boundary (``torch.cuda`` by default): ``memory_allocated``,
            ``max_memory_allocated``, ``reset_peak_memory_stats``, ``synchronize`` and
            ``empty_cache``.
    """
    import torch

    if stats is None:
        stats = torch.cuda
    gc.collect()
    stats.empty_cache()
    before = stats.memory_allocated()
    model = build()
    opt = make_optimizer(optimizer, model, foreach=True if device == "cuda" else None)
    stats.synchronize()
    stats.reset_peak_memory_stats()
    for _ in range(steps):
        training_step(model, opt, batch_fn, dtype=dtype, device_type=device)
    stats.synchronize()
    peak = stats.max_memory_allocated() - before
    del model, opt
    gc.collect()
    stats.empty_cache()
    return int(peak)
