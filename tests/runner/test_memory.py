"""Peak memory measurement on CPU (and the CUDA branch through a fake torch.cuda)."""

from __future__ import annotations

from autopeft.runner.memory import PeakMemory, tensor_bytes


def test_cpu_peak_sees_a_large_temporary_allocation():
    import torch

    with PeakMemory(torch.device("cpu")) as pm:
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del x
    assert pm.kind in {"cpu_weights_plus_rss_growth", "cpu_weights_plus_sampled_rss_growth"}
    assert pm.peak_bytes >= 60 * 2**20


def test_cpu_peak_adds_exact_weight_bytes():
    import torch

    model = torch.nn.Linear(100, 10)
    model.extra = torch.nn.Linear(100, 10)
    model.extra.weight = model.weight  # tied: counted once
    assert tensor_bytes(model) == (100 * 10 + 10 + 10) * 4
    with PeakMemory(torch.device("cpu"), base_bytes=tensor_bytes(model)) as pm:
        pass
    assert pm.peak_bytes >= tensor_bytes(model)


def test_cuda_branch_reads_max_allocated(monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda i: calls.append(i))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda i: 100 * (i + 1))
    with PeakMemory(torch.device("cuda")) as pm:
        pass
    assert calls == [0, 1]
    assert pm.kind == "cuda_max_allocated" and pm.peak_bytes == 300
