"""The table-driven peft tuners (autopeft/methods/peft_tuners.py) on tiny T5 and BERT.

Every row of the table: apply, forward + backward + one AdamW step, a trainable count equal
to peft's own count, and every peft type either registered or excluded with a reason. Saving
and loading are in test_saving.py (it runs every registered method).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
from peft.utils import PeftType

from autopeft.errors import AutopeftError
from autopeft.methods import ModelInfo, count_parameters, get_method, list_methods
from autopeft.methods.peft_tuners import EXCLUDED, OWN_MODULES, TUNERS, config_class
from autopeft.testing import tiny_batch, tiny_bert, tiny_t5

ARCHS = {"t5": tiny_t5, "bert": tiny_bert}
# A second, non-default setting per tuner, each fitting width 32 (block sizes divide it).
SECOND = {
    "loha": {"r": 2, "alpha": 4, "target_modules": ["q", "k", "v", "o", "ffn_in", "ffn_out"]},
    "oft": {"oft_block_size": 8, "coft": True},
    "boft": {"boft_block_size": 8, "boft_n_butterfly_factor": 2},
    "hra": {"r": 4},
    "c3a": {"block_size": 16, "target_modules": ["ffn_in", "ffn_out"]},
    "fourierft": {"n_frequency": 64, "scaling": 100.0},
    "waveft": {"n_frequency": 64},
    "vblora": {"num_vectors": 16, "vector_length": 8, "topk": 3},
    "miss": {"r": 8},
    "randlora": {"r": 8, "randlora_alpha": 16},
    "shira": {"r": 2, "target_modules": ["o"]},
    "delora": {"r": 4, "delora_lambda": 5},
    "gralora": {"r": 8, "alpha": 16, "gralora_k": 4},
    "tinylora": {"u": 16},
    "road": {"variant": "road_2", "group_size": 16},
    "deft": {"r": 4},
    "glora": {"r": 4, "layers": "mask:01"},
    "hira": {"r": 8},
    "lily": {"r": 8},
    "peanut": {"r": 8, "depth": 1},
    "psoft": {"r": 8, "psoft_alpha": 8},
    "pvera": {"r": 16},
    "unilora": {"r": 2, "theta_d_length": 64},
    "adamss": {"r": 16, "num_subspaces": 2, "subspace_rank": 2},
    "beft": {"target_modules": ["q", "k", "v"]},
    "frod": {"sparse_rate": 0.05},
    "osf": {"effective_rank": 0.5, "target_modules": ["ffn_in"]},
    "supertuning": {"sparsity": 0.9},
    "p_tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 16},
}
CASES = [(t.name, p) for t in TUNERS for p in ({}, SECOND[t.name])]


def test_table_rows_are_peft_fields():
    assert set(SECOND) == {t.name for t in TUNERS}
    for t in TUNERS:
        fields = {f.name for f in dataclasses.fields(config_class(t.peft_type))}
        assert set(t.params) | set(t.fixed) <= fields, t.name
        assert ("target_modules" in get_method(t.name).params) != t.prompt, t.name


def test_every_peft_type_is_registered_or_excluded_with_a_reason():
    table = {t.peft_type for t in TUNERS}
    assert not (table & set(OWN_MODULES)) and not (table & set(EXCLUDED))
    assert not set(OWN_MODULES) & set(EXCLUDED)
    ours = {k for k in PEFT_TYPE_TO_CONFIG_MAPPING if str(k).startswith("AUTOPEFT")}
    assert {p.value for p in PeftType} | set(PEFT_TYPE_TO_CONFIG_MAPPING) - ours == (
        table | set(OWN_MODULES) | set(EXCLUDED)
    )
    assert all(len(reason) > 20 for reason in EXCLUDED.values())
    registered = {m.name for m in list_methods()}
    assert {t.name for t in TUNERS} | set(OWN_MODULES.values()) <= registered


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("name, params", CASES, ids=[f"{n}-{bool(p)}" for n, p in CASES])
def test_tuner_trains_and_counts_like_peft(arch, name, params):
    model = ARCHS[arch]()
    cfg, info = model.config, ModelInfo.from_config(model.config)
    base = count_parameters(model)
    model = get_method(name).build(model, params, info)
    count = count_parameters(model)
    assert count.trainable == model.get_nb_trainable_parameters()[0] > 0
    assert count.total == base.total + count.trainable
    if not info.is_seq2seq:
        assert any(p.requires_grad for n, p in model.named_parameters() if "classifier" in n)

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = model(**tiny_batch(cfg)).loss
    assert math.isfinite(loss.item())
    loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert all(p.grad is not None for p in trainable.values()), name
    torch.optim.AdamW(trainable.values(), lr=1e-2, weight_decay=0.0).step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= set(trainable)


def test_second_setting_changes_the_count():
    # The searched parameters really reach peft: a different size, a different count.
    for t in TUNERS:
        if t.name in ("beft", "road"):  # sizes set by the targets / the variant, checked below
            continue
        counts = {count_parameters(get_method(t.name).build(
            tiny_bert(), p, ModelInfo.from_config(tiny_bert().config))).trainable
            for p in ({}, SECOND[t.name])}
        assert len(counts) == 2, t.name


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("loha", {"r": 0}, "parameter r must be an integer >= 1"),
        ("c3a", {"block_size": 7}, "method 'c3a' .*block_size=7.*change that parameter"),
        ("lily", {"num_B": 1}, "method 'lily' .*num_B=1.*must be at least 2"),
        ("oft", {"coft": "yes"}, "coft must be true or false"),
        ("fourierft", {"scaling": -1.0}, "scaling must be a number > 0"),
        ("delora", {"module_dropout": 1.0}, "module_dropout must be a number in"),
        ("road", {"variant": 2}, "variant must be a string like 'road_1'"),
        ("miss", {"target_modules": ["qq"]}, "'qq' matches no Linear"),
        ("p_tuning", {"num_virtual_tokens": 0}, "num_virtual_tokens must be an integer >= 1"),
        ("p_tuning", {"target_modules": ["q"]}, "has no parameter 'target_modules'"),
    ],
)
def test_bad_values_are_one_line_errors(name, params, message):
    model = tiny_bert()
    with pytest.raises(AutopeftError, match=message) as err:
        get_method(name).build(model, params, ModelInfo.from_config(model.config))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["road", "beft", "miss", "p_tuning"])
def test_layers_and_targets_restrict_placement(name):
    model = tiny_t5()
    info = ModelInfo.from_config(model.config)
    if name == "p_tuning":
        built = get_method(name).build(model, {"num_virtual_tokens": 3}, info)
        # The prompts go to the encoder only (one transformer submodule), all of them trained.
        assert built.peft_config["default"].num_transformer_submodules == 1
        return
    built = get_method(name).build(model, {"target_modules": ["dec.self.o"], "layers": [1]},
                                   info)
    targets = set(built.peft_config["default"].target_modules)
    assert targets == {"decoder.block.1.layer.0.SelfAttention.o"}
