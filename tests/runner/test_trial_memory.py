"""A trial's measured peak is in the planner's unit: bytes of live tensors.

On CPU the runner measures with the tensor meter (``cpu_tensors``), the bookkeeping the
predictor runs on fake tensors; with every batch padded to the planned length, measurement
and prediction agree to a few bytes (the runner's loss accumulator).
"""

from __future__ import annotations

import pytest
import torch

from autopeft.memory import predict_peak_memory
from autopeft.modeling import resolve_model
from autopeft.runner.config import TrialConfig
from autopeft.runner.trial import build_trial_model, prepare_data, run_trial
from autopeft.status import trial_row
from autopeft.testing import tiny_model_dir

pytestmark = pytest.mark.usefixtures("shared_data")


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_model_dir("bert", tmp_path_factory.mktemp("bert"))


def _cfg(model, method, **kw):
    base = dict(task="glue/sst2", model=str(model), method=method, learning_rate=1e-3,
                epochs=1, max_steps=3, batch_size=8, train_samples=48, eval_samples=24,
                max_length=64, pad_to=64, threads=1)
    return TrialConfig(**{**base, **kw})


@pytest.mark.parametrize("method", ["lora", "ia3", "full", "prompt_tuning"])
def test_cpu_trial_peak_is_what_the_planner_predicts(bert_dir, method):
    res = run_trial(_cfg(bert_dir, method))
    assert res.status == "completed", res.reason
    assert (res.peak_memory_meter, res.memory_kind) == ("cpu_tensors", "cpu_live_tensor_bytes")
    pred = predict_peak_memory(resolve_model(str(bert_dir)).config, method, batch_size=8,
                               seq_len=64, device="cpu")
    # a scalar or two apart (the runner's loss accumulator), where RSS growth was ~2x off
    assert abs(pred.total_bytes - res.peak_memory_bytes) <= 64
    assert res.rss_peak_bytes is not None and res.rss_peak_bytes > 0
    extra = trial_row({**res.to_dict(), "method": method})["extra"]
    assert extra["peak_memory_meter"] == "cpu_tensors"
    assert extra["rss_peak_bytes"] == res.rss_peak_bytes


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_16_bit_trial_on_cpu_fails_with_the_reason(bert_dir, precision):
    res = run_trial(_cfg(bert_dir, "lora", precision=precision))
    assert res.status == "failed" and f"--precision {precision} needs a CUDA GPU" in res.reason


def test_trial_model_holds_its_frozen_base_in_the_training_dtype(bert_dir):
    cfg = _cfg(bert_dir, "lora")
    data = prepare_data(cfg)
    model, _, _ = build_trial_model(cfg, data.spec, "bf16")
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    trainable = {p.dtype for p in model.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trainable == {torch.float32}
    model, _, _ = build_trial_model(cfg, data.spec)  # default: fp32 throughout
    assert {p.dtype for p in model.parameters()} == {torch.float32}
