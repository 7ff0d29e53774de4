"""count_parameters: unique parameters, tied weights once, meta device equals CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autopeft.methods import ModelInfo, ParamCount, count_parameters, get_method, list_methods
from autopeft.testing import tiny_bert, tiny_bert_config, tiny_t5, tiny_t5_config

CONFIGS = Path(__file__).resolve().parents[3] / "shared" / "models" / "configs"


def test_param_count_value():
    c = ParamCount(trainable=25, total=100)
    assert c.trainable_percent == 25.0
    assert ParamCount(0, 0).trainable_percent == 0.0
    with pytest.raises(ValueError):
        ParamCount(trainable=2, total=1)
    with pytest.raises(AttributeError):
        c.total = 5  # frozen: a stored count cannot drift


def test_requires_grad_decides_trainable():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    assert count_parameters(model) == ParamCount(trainable=16 + 10, total=26)
    model[0].weight.requires_grad_(False)
    assert count_parameters(model) == ParamCount(trainable=26 - 12, total=26)


def test_shared_parameter_counted_once():
    a, b = torch.nn.Linear(4, 4, bias=False), torch.nn.Linear(4, 4, bias=False)
    b.weight = a.weight  # tied: one Parameter under two names
    assert count_parameters(torch.nn.ModuleList([a, b])).total == 16
    # Distinct Parameter objects over one storage train as one tensor: counted once on CPU.
    c = torch.nn.Linear(4, 4, bias=False)
    c.weight = torch.nn.Parameter(a.weight.data)
    assert count_parameters(torch.nn.ModuleList([a, c])).total == 16
    # Views of one storage at different offsets are different parameters.
    base = torch.zeros(8)
    d = torch.nn.ParameterList([torch.nn.Parameter(base[:4]), torch.nn.Parameter(base[4:])])
    assert count_parameters(d).total == 8


def test_t5_tied_embeddings_counted_once():
    model = tiny_t5()
    # transformers 5 always ties T5's shared embedding, encoder/decoder embed_tokens and lm_head.
    assert model.lm_head.weight is model.shared.weight
    vocab_by_dim = 128 * 32
    every_name = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    tied = count_parameters(model).total
    assert every_name - tied == 3 * vocab_by_dim
    model.lm_head.weight = torch.nn.Parameter(model.shared.weight.detach().clone())
    assert count_parameters(model).total - tied == vocab_by_dim


def test_builders_are_pure_functions_of_seed():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b, c = tiny_bert(seed=1), tiny_bert(seed=1), tiny_bert(seed=2)
    assert torch.equal(torch.get_rng_state(), state), "builders must not touch the global RNG"
    wa, wb, wc = (m.bert.encoder.layer[0].attention.self.query.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def _meta_twin(config, cls):
    with torch.device("meta"):
        return cls(config)


METHODS = [m.name for m in list_methods()]
# Compacter's PHM dimension (4) must divide the bottleneck: 32 / 32 = 1 does not on tiny models.
TINY = {"compacter": {"reduction_factor": 4}, "compacter++": {"reduction_factor": 4}}
# peft tuners whose initialisation reads weight values (AdaMSS and FRoD decompose them, SHiRA
# draws a sparse mask with nonzero): a weightless meta model cannot carry them, so memory
# estimates report "cannot predict" for them (tests/memory checks the message).
NEEDS_WEIGHTS = {"adamss", "frod", "shira"}


# BitFit does not apply to T5 (test_methods checks the refusal).
@pytest.mark.parametrize(
    "arch, name", [("bert", m) for m in METHODS] + [("t5", m) for m in METHODS if m != "bitfit"]
)
def test_meta_device_counts_equal_cpu(arch, name):
    config = tiny_t5_config() if arch == "t5" else tiny_bert_config(num_labels=2)
    cpu = tiny_t5() if arch == "t5" else tiny_bert()
    meta = _meta_twin(config, type(cpu))
    assert next(meta.parameters()).is_meta
    info = ModelInfo.from_config(config)
    method = get_method(name)
    if name in NEEDS_WEIGHTS:
        with pytest.raises((NotImplementedError, RuntimeError), match="meta|nonzero"):
            method.build(meta, TINY.get(name), info)
        return
    counts = [count_parameters(method.build(m, TINY.get(name), info)) for m in (cpu, meta)]
    assert counts[0] == counts[1]
    assert counts[0].trainable > 0


@pytest.mark.skipif(not CONFIGS.is_dir(), reason="../shared model configs absent")
@pytest.mark.parametrize(
    "name, total", [("t5-large", 737_668_096), ("bert-base-uncased", 109_483_778)]
)
def test_reference_totals_on_meta(name, total):
    from transformers import AutoConfig, BertForSequenceClassification, T5ForConditionalGeneration

    config = AutoConfig.from_pretrained(CONFIGS / name, num_labels=2)
    cls = T5ForConditionalGeneration if config.model_type == "t5" else BertForSequenceClassification
    count = count_parameters(_meta_twin(config, cls))
    assert count == ParamCount(trainable=total, total=total)
