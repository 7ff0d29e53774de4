"""The allocation tracker on real tensors, and predictions against measured CPU steps.

The measured peak comes from real allocations (torch profiler memory events, see
:mod:`autopeft.memory.measure`); ``scripts/bench_memory.py`` reports the errors of every
method, these tests hold a few of them to a tolerance.
"""

from __future__ import annotations

import pytest
import torch

from autopeft.memory import predict_peak_memory
from autopeft.memory.measure import measure_training_peak
from autopeft.memory.step import apply_method, build_base_model, make_batch
from autopeft.memory.tracker import AllocationTracker
from autopeft.testing import tiny_bert_config, tiny_t5_config

# Real and traced steps run the same code; what differs is allocator-level detail (a few
# bytes per step counter). 2% leaves room for kernels that differ on other CPUs.
TOLERANCE = 0.02


def test_tracker_counts_live_storages_and_keeps_the_peak():
    tr = AllocationTracker()
    with tr:
        a = torch.ones(1000)  # 4000 bytes
        b = a.view(10, 100)  # same storage: no new bytes
        c = a * 2
        assert tr.live["activations"] == 8000
        del a, b, c
    assert tr.total == 0 and tr.peak_bytes == 8000
    assert tr.peak_breakdown["activations"] == 8000 and tr.peak_where == (0, "forward")


def test_tracker_labels_params_grads_and_state_and_rounds_blocks():
    model = torch.nn.Linear(10, 10)
    model.bias.requires_grad_(False)
    tr = AllocationTracker(granularity=512)
    tr.track_model(model)
    assert tr.live["trainable_params"] == 512 and tr.live["weights"] == 512
    opt = torch.optim.SGD([model.weight], lr=0.1, momentum=0.9)
    with tr:
        tr.phase = "forward"
        loss = model(torch.ones(3, 10)).sum()
        tr.phase = "backward"
        loss.backward()
        assert tr.live["grads"] == 512 and tr.max_grads == 512
        tr.phase = "optimizer"
        opt.step()
        tr.track_optimizer_state(opt)
        assert tr.live["optimizer_state"] == 512  # the momentum buffer
        opt.zero_grad(set_to_none=True)
    assert tr.live["grads"] == 0
    tr.remove_hooks()


CASES = [
    ("t5", "lora"),
    ("t5", "prompt_tuning"),
    ("bert", "ia3"),
    ("bert", "full"),
    ("bert", "prefix_tuning"),
]


@pytest.mark.parametrize(("kind", "method"), CASES)
def test_prediction_matches_a_measured_cpu_training_step(kind, method):
    config = {"t5": tiny_t5_config, "bert": tiny_bert_config}[kind]()
    shape = {"batch_size": 4, "seq_len": 16, "target_len": 4}
    predicted = predict_peak_memory(config, method, device="cpu", **shape)
    torch.manual_seed(0)
    model = apply_method(build_base_model(config, device="cpu"), method, None)
    measured = measure_training_peak(model, lambda: make_batch(config, **shape))
    assert measured.allocations > 0 and measured.baseline_bytes > 0
    error = abs(predicted.total_bytes - measured.peak_bytes) / measured.peak_bytes
    assert error <= TOLERANCE, (predicted.total_bytes, measured.peak_bytes)


def test_measurement_needs_two_steps():
    config = tiny_bert_config()
    model = apply_method(build_base_model(config, device="cpu"), "lora", None)
    with pytest.raises(ValueError, match="at least 2"):
        measure_training_peak(model, lambda: None, steps=1)
