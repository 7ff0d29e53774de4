"""Peak memory measurement on CPU (tensor meter, RSS meter) and the CUDA branch through a fake
torch.cuda."""

from __future__ import annotations

import pytest
import torch

from autopeft.runner.memory import METERS, PeakMemory, tensor_bytes


def test_rss_meter_sees_a_large_temporary_allocation():
    with PeakMemory(torch.device("cpu"), cpu_meter="cpu_rss") as pm:
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del x
    assert pm.meter == "cpu_rss"
    assert pm.kind in {"cpu_weights_plus_rss_growth", "cpu_weights_plus_sampled_rss_growth"}
    assert pm.peak_bytes >= 60 * 2**20 and pm.rss_peak_bytes is None


def test_rss_meter_adds_exact_weight_bytes():
    model = torch.nn.Linear(100, 10)
    model.extra = torch.nn.Linear(100, 10)
    model.extra.weight = model.weight  # tied: counted once
    assert tensor_bytes(model) == (100 * 10 + 10 + 10) * 4
    with PeakMemory(torch.device("cpu"), base_bytes=tensor_bytes(model), cpu_meter="cpu_rss") as pm:
        pass
    assert pm.peak_bytes >= tensor_bytes(model)


def test_tensor_meter_counts_exact_live_tensor_bytes():
    model = torch.nn.Linear(100, 10)
    meter = PeakMemory("cpu")
    meter.track(model)
    assert meter.current() == 0  # not started
    with meter:
        assert meter.current() == (100 * 10 + 10) * 4
        x = torch.ones(1000)  # 4000 bytes
        y = x.view(10, 100) * 2  # the view shares x's storage; the product is new
        assert meter.current() == (1010 + 2000) * 4
        del x, y
        assert meter.current() == 1010 * 4
        z = torch.zeros(10)
    assert meter.meter == "cpu_tensors" and meter.kind == "cpu_live_tensor_bytes"
    assert meter.peak_bytes == (1010 + 2000) * 4  # exact: no allocator slack, no Python objects
    assert meter.rss_peak_bytes is not None and meter.rss_peak_bytes >= 1010 * 4
    del z


def test_tensor_meter_leaves_nothing_behind_and_sees_training_memory():
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 2))
    model[0].weight.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    meter = PeakMemory(torch.device("cpu"))
    meter.track(model)
    with meter:
        for _ in range(2):
            model(torch.ones(8, 64)).sum().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    weights = tensor_bytes(model)
    trainable = (64 * 2 + 2 + 64) * 4
    # weights + AdamW's two moments + the gradients alive at the step, at least
    assert meter.peak_bytes >= weights + 2 * trainable + trainable
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    assert _get_current_dispatch_mode() is None  # the mode was popped on leaving


def test_cuda_branch_reads_max_allocated_and_current(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda i: calls.append(i))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda i: 100 * (i + 1))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda i: 10 * (i + 1))
    with PeakMemory(torch.device("cuda")) as pm:
        assert pm.current() == 30
    assert calls == [0, 1]
    assert pm.meter == "cuda_allocated" and pm.kind == "cuda_max_allocated"
    assert pm.peak_bytes == 300 and pm.rss_peak_bytes is None
    assert set(METERS) == {"cuda_allocated", "cpu_tensors", "cpu_rss"}


def test_unknown_cpu_meter_is_refused():
    with pytest.raises(ValueError, match="cpu_meter"):
        PeakMemory("cpu", cpu_meter="psutil")
