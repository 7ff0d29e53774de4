"""Warm workers: trials in one process give what they give in fresh processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from autopeft.runner import warm
from autopeft.runner.config import TrialConfig
from autopeft.runner.trial import prepare_data, run_trial
from autopeft.testing import tiny_model_dir

pytestmark = pytest.mark.usefixtures("shared_data")


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    # Like MiniLM, an encoder without a head: loading draws the fresh head's weights from
    # the RNG. With dropout, every later random draw shows in the trained weights too.
    from transformers import AutoModelForSequenceClassification

    path = tiny_model_dir("bert", tmp_path_factory.mktemp("bert"))
    encoder = AutoModelForSequenceClassification.from_pretrained(str(path)).bert
    encoder.config.update({"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1})
    encoder.save_pretrained(str(path))
    assert "BertModel" in json.loads((path / "config.json").read_text())["architectures"]
    return path


def _weights(res):
    from safetensors.torch import load_file

    return load_file(str(Path(res.adapter_path) / "adapter_model.safetensors"))


def _cfg(model, method, **kw):
    base = dict(task="glue/sst2", model=str(model), method=method, learning_rate=1e-2,
                epochs=1, max_steps=4, batch_size=8, train_samples=48, eval_samples=24,
                max_length=64, threads=1)
    return TrialConfig(**{**base, **kw})


def _outcome(res):
    return res.status, res.primary_metric, res.trainable_params, res.steps


def test_methods_in_a_row_in_one_worker_equal_fresh_workers(bert_dir, tmp_path):
    methods = ["lora", "ia3", "lora"]
    data = prepare_data(_cfg(bert_dir, "lora"))
    fresh, in_a_row = [], []
    for i, method in enumerate(methods):
        warm.clear()  # what a fresh worker has: nothing
        fresh.append(run_trial(_cfg(bert_dir, method, save_dir=f"{tmp_path}/f{i}"), data))
    warm.clear()
    for i, method in enumerate(methods):
        in_a_row.append(run_trial(_cfg(bert_dir, method, save_dir=f"{tmp_path}/w{i}"), data))
    assert [_outcome(r) for r in in_a_row] == [_outcome(r) for r in fresh]
    assert all(r.status == "completed" for r in fresh)
    for a, b in zip(fresh, in_a_row, strict=True):  # trained bit for bit alike
        wa, wb = _weights(a), _weights(b)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_trial_never_changes_the_kept_model(bert_dir):
    warm.clear()
    cfg = _cfg(bert_dir, "full", learning_rate=0.5)  # full fine-tuning moves every weight
    run_trial(cfg, prepare_data(cfg))
    key, _, kept, _ = warm._KEPT["model"]
    from autopeft.modeling import build_model, resolve_model

    torch.manual_seed(0)
    reference = build_model(resolve_model(str(bert_dir)), num_labels=2)
    for (name, a), (_, b) in zip(kept.state_dict().items(), reference.state_dict().items(),
                                 strict=True):
        if "classifier" not in name:  # the fresh head depends on the RNG state
            assert torch.equal(a, b), name
