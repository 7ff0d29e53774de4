"""run_trial end to end on tiny random models saved as local folders (no Ray)."""

from __future__ import annotations

import math

import pytest

from autopeft.runner.config import TrialConfig
from autopeft.runner.trial import prepare_data, run_trial
from autopeft.testing import tiny_model_dir

pytestmark = pytest.mark.usefixtures("shared_data")


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_model_dir("bert", tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    return tiny_model_dir("t5", tmp_path_factory.mktemp("t5"))


@pytest.fixture(scope="module")
def t5_labels_dir(t5_dir, tmp_path_factory):
    """The tiny T5 fully fine-tuned until it generates RTE label text (the random one
    generates junk): a stand-in for a pretrained T5."""
    import torch

    from autopeft.runner.train import train
    from autopeft.runner.trial import build_trial_model

    cfg = _cfg(t5_dir, "full", task="glue/rte", learning_rate=3e-2, epochs=100, max_steps=40,
               warmup_ratio=0.0)
    data = prepare_data(cfg)
    torch.manual_seed(0)
    model, tokenizer, _ = build_trial_model(cfg, data.spec)
    train(model, data, tokenizer, cfg, torch.device("cpu"))
    path = tmp_path_factory.mktemp("t5-labels")
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def _fake_generate(monkeypatch, tokenizer_dir, parse_every=0):
    """Replace T5's generate (under every peft wrapper) by one that emits pad tokens only,
    the prefix-tuning failure, except for every ``parse_every``-th row (0: none), which gets
    the label text "entailment". Returns the list of rows it made junk."""
    import torch
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    label = AutoTokenizer.from_pretrained(str(tokenizer_dir))("entailment",
                                                              add_special_tokens=False)
    label_ids = label["input_ids"]
    junk: list[int] = []

    def generate(self, input_ids=None, **kwargs):
        pad = self.config.pad_token_id
        out = torch.full((input_ids.shape[0], len(label_ids) + 1), pad, dtype=torch.long)
        for row in range(input_ids.shape[0]):
            if parse_every and row % parse_every == 0:
                out[row, 1:] = torch.tensor(label_ids)
            else:
                junk.append(row)
        return out

    monkeypatch.setattr(T5ForConditionalGeneration, "generate", generate)
    return junk


def _cfg(model, method="lora", **kw):
    base = dict(task="glue/sst2", model=str(model), method=method, learning_rate=1e-3,
                epochs=1, max_steps=4, batch_size=8, train_samples=48, eval_samples=24,
                max_length=64, threads=1)
    base.update(kw)
    return TrialConfig(**base)


@pytest.mark.parametrize("method", ["lora", "ia3", "bitfit", "full", "prompt_tuning"])
def test_encoder_trial_completes(bert_dir, method):
    res = run_trial(_cfg(bert_dir, method))
    assert res.status == "completed", res.reason
    assert 0.0 <= res.primary_metric <= 1.0
    assert res.metrics["accuracy"] == res.primary_metric
    assert 0 < res.trainable_params <= res.total_params
    assert res.steps == 4
    assert res.peak_memory_bytes > 0 and res.memory_kind.startswith("cpu_")
    assert res.train_seconds > 0 and res.examples_per_second > 0
    assert (res.unparseable_predictions, res.eval_examples) == (0, 24)  # a head always parses


@pytest.mark.parametrize("method, lr", [("lora", 1e-3), ("prefix_tuning", 1e-2),
                                        ("ln_tuning", 1e-3)])
def test_seq2seq_trial_generates_label_text(t5_labels_dir, method, lr):
    # 20 random prefixes in every attention module throw the tiny model's generation off at
    # first: at 1e-3 four steps do not bring it back to label words; at 1e-2 (within
    # prefix tuning's range) they do.
    res = run_trial(_cfg(t5_labels_dir, method, task="glue/rte", learning_rate=lr))
    assert res.status == "completed", res.reason
    assert set(res.metrics) == {"accuracy"}
    assert 0.0 <= res.primary_metric <= 1.0
    assert res.eval_examples == 24 and res.unparseable_predictions < 24


def test_random_t5_generating_junk_fails(t5_dir):
    """A random tiny T5 generates text that is no RTE label: every prediction is None and
    the trial is failed, though the metric scores it (as always wrong)."""
    res = run_trial(_cfg(t5_dir, "lora", task="glue/rte"))
    assert res.status == "failed"
    assert res.reason.startswith("all 24 dev predictions were unparseable (e.g. dev example 0 "
                                 "generated '"), res.reason
    assert (res.unparseable_predictions, res.eval_examples) == (24, 24)
    assert res.metrics == {"accuracy": 0.0}


def test_pad_only_generation_fails_and_saves_nothing(t5_dir, monkeypatch, tmp_path):
    junk = _fake_generate(monkeypatch, t5_dir)
    res = run_trial(_cfg(t5_dir, "lora", task="glue/rte", save_dir=str(tmp_path / "a")))
    assert len(junk) == 24
    assert res.status == "failed"
    assert res.reason == ("all 24 dev predictions were unparseable (e.g. dev example 0 "
                          "generated '')")
    assert (res.unparseable_predictions, res.eval_examples) == (24, 24)
    assert res.adapter_path is None and not (tmp_path / "a").exists()


def test_partly_unparseable_predictions_are_counted(t5_dir, monkeypatch):
    junk = _fake_generate(monkeypatch, t5_dir, parse_every=3)
    res = run_trial(_cfg(t5_dir, "lora", task="glue/rte"))
    assert 0 < len(junk) < 24
    assert res.status == "completed", res.reason
    assert (res.unparseable_predictions, res.eval_examples) == (len(junk), 24)


def test_bitfit_on_t5_is_not_applicable(t5_dir):
    res = run_trial(_cfg(t5_dir, "bitfit", task="glue/rte"))
    assert res.status == "not_applicable"
    assert "bias" in res.reason


def test_data_prepared_once_is_reused(bert_dir):
    cfg = _cfg(bert_dir)
    data = prepare_data(cfg)
    assert len(data.train) == 48 and len(data.eval) == 24
    a, b = run_trial(cfg, data), run_trial(cfg, data)
    assert a.primary_metric == b.primary_metric  # same seed, same data: reproducible


def test_max_steps_and_epochs_cap(bert_dir):
    res = run_trial(_cfg(bert_dir, max_steps=None, epochs=0.5))
    assert res.steps == math.ceil(48 / 8 * 0.5)


def test_timeout_stops_training_and_still_evaluates(bert_dir):
    res = run_trial(_cfg(bert_dir, max_steps=None, epochs=50, timeout=0.5))
    assert res.status == "timeout"
    assert res.primary_metric is not None and res.steps < 6 * 50
    assert "timeout" in res.reason


def test_divergence_is_reported(bert_dir):
    res = run_trial(_cfg(bert_dir, "full", learning_rate=1e30))
    assert res.status == "diverged", (res.status, res.reason)
    assert "loss became" in res.reason


def test_bad_method_param_fails_only_the_trial(bert_dir):
    res = run_trial(_cfg(bert_dir, params={"rank": 4}))
    assert res.status == "failed"
    assert "rank" in res.reason


def test_injected_oom_is_caught(bert_dir, monkeypatch):
    import torch

    import autopeft.runner.train as train_mod

    def boom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(train_mod, "train", boom)
    res = run_trial(_cfg(bert_dir))
    assert res.status == "oom"
    assert res.peak_memory_bytes is not None


def test_a_crash_keeps_its_whole_traceback(bert_dir, monkeypatch):
    import autopeft.runner.train as train_mod

    def deep(*a, **k):
        raise ValueError("first line\nsecond line of the message")

    monkeypatch.setattr(train_mod, "train", deep)
    res = run_trial(_cfg(bert_dir))
    assert res.status == "failed" and res.reason == "ValueError: first line"
    assert res.traceback.startswith("Traceback (most recent call last):")
    assert "in deep" in res.traceback and "second line of the message" in res.traceback


def test_intermediate_reports_for_early_stopping(bert_dir):
    seen = []
    res = run_trial(_cfg(bert_dir, max_steps=None, epochs=3, eval_every=2), report=seen.append)
    assert res.status == "completed"
    assert [r["steps"] for r in seen] == [2, 4, 6, 8, 10, 12, 14, 16]  # 18 steps, not the last
    assert all(r["status"] == "running" and r["primary_metric"] is not None for r in seen)
    assert all(r["trainable_params"] == res.trainable_params for r in seen)


def test_completed_trial_saves_its_adapter(bert_dir, tmp_path):
    from autopeft.methods.saving import load_adapter
    from autopeft.testing import tiny_bert

    res = run_trial(_cfg(bert_dir, "lora", save_dir=str(tmp_path / "a")))
    assert res.status == "completed" and res.adapter_path == str(tmp_path / "a")
    assert (tmp_path / "a" / "adapter_config.json").is_file()
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()
    full = run_trial(_cfg(bert_dir, "full", save_dir=str(tmp_path / "f")))
    assert full.adapter_path is None and not (tmp_path / "f").exists()  # needs save_full
    assert tiny_bert is not None and load_adapter is not None


def test_gradient_accumulation_keeps_the_effective_batch(bert_dir):
    """The same batches split in two micro-batches train to the same weights."""
    import torch

    from autopeft.runner.train import train
    from autopeft.runner.trial import build_trial_model

    weights = []
    for accum in (1, 2):
        cfg = _cfg(bert_dir, "full", max_steps=3, grad_accum=accum)
        data = prepare_data(cfg)
        torch.manual_seed(0)
        model, tok, _ = build_trial_model(cfg, data.spec)
        stats = train(model, data, tok, cfg, torch.device("cpu"))
        assert stats.steps == 3
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1], atol=1e-5)
