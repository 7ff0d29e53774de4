"""Module groups and layer specs resolved on tiny T5/BERT and on real architectures (meta)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autopeft.errors import AutopeftError
from autopeft.methods import ModelInfo
from autopeft.methods.placement import layer_indices, resolve_modules, resolve_norms
from autopeft.testing import tiny_bert, tiny_t5

SHARED = Path(__file__).resolve().parents[3] / "shared" / "models"


def _resolve(model, groups, layers="all"):
    return resolve_modules(model, ModelInfo.from_config(model.config), groups, layers)


@pytest.mark.parametrize(
    "spec, n, expected",
    [
        ("all", 4, [0, 1, 2, 3]),
        ("upper_half", 4, [2, 3]),
        ("lower_half", 4, [0, 1]),
        ("upper_half", 5, [2, 3, 4]),
        ("lower_half", 5, [0, 1]),
        ("1-2", 4, [1, 2]),
        (" 3 - 3 ", 4, [3]),
        ([3, 0, 3], 4, [0, 3]),
        ((1,), 2, [1]),
    ],
)
def test_layer_indices(spec, n, expected):
    assert layer_indices(spec, n) == expected


@pytest.mark.parametrize(
    "spec, n, message",
    [
        ("0-4", 4, "out of range"),
        ("2-1", 4, "out of range"),
        ([4], 4, "out of range"),
        ([-1], 4, "out of range"),
        ("first", 4, "not understood"),
        ([], 4, "selects no layer"),
        ("lower_half", 1, "selects no layer"),
        (True, 4, "not understood"),
        ([1.0], 4, "not understood"),
        (2, 4, "not understood"),
    ],
)
def test_layer_indices_rejects(spec, n, message):
    with pytest.raises(AutopeftError, match=message):
        layer_indices(spec, n)


def test_t5_groups_cover_self_and_cross_attention():
    model = tiny_t5()
    q = _resolve(model, ["q"])
    assert q == [
        "encoder.block.0.layer.0.SelfAttention.q",
        "encoder.block.1.layer.0.SelfAttention.q",
        "decoder.block.0.layer.0.SelfAttention.q",
        "decoder.block.0.layer.1.EncDecAttention.q",
        "decoder.block.1.layer.0.SelfAttention.q",
        "decoder.block.1.layer.1.EncDecAttention.q",
    ]
    assert all(n.endswith(".wo") for n in _resolve(model, ["ffn_out"]))
    assert len(_resolve(model, ["ffn_out"])) == 4
    # Raw names: a module name, or a dotted suffix inside the layer.
    assert _resolve(model, ["wi"]) == _resolve(model, ["ffn_in"])
    assert len(_resolve(model, ["EncDecAttention.q"])) == 2
    # Groups and raw names combine, without duplicates, in model order.
    both = _resolve(model, ["v", "q", "SelfAttention.q"])
    assert len(both) == len(set(both)) == 12
    modules = dict(model.named_modules())
    assert all(isinstance(modules[n], torch.nn.Linear) for n in both)


def test_gated_t5_ffn_in_has_both_projections():
    names = _resolve(tiny_t5(feed_forward_proj="gated-gelu"), ["ffn_in"])
    assert len(names) == 8
    assert {n.rsplit(".", 1)[1] for n in names} == {"wi_0", "wi_1"}


def test_bert_ffn_out_is_not_attention_output():
    model = tiny_bert()
    assert _resolve(model, ["ffn_out"]) == [
        "bert.encoder.layer.0.output.dense",
        "bert.encoder.layer.1.output.dense",
    ]
    assert _resolve(model, ["o"]) == [
        "bert.encoder.layer.0.attention.output.dense",
        "bert.encoder.layer.1.attention.output.dense",
    ]
    assert _resolve(model, ["ffn_in"])[0] == "bert.encoder.layer.0.intermediate.dense"
    assert _resolve(model, ["query"]) == _resolve(model, ["q"])
    # A raw name never reaches outside the layers (pooler, classifier).
    assert len(_resolve(model, ["dense"])) == 6


def test_layers_resolved_per_stack():
    model = tiny_t5(num_decoder_layers=3)
    names = _resolve(model, ["q"], "upper_half")
    assert names == [
        "encoder.block.1.layer.0.SelfAttention.q",
        "decoder.block.1.layer.0.SelfAttention.q",
        "decoder.block.1.layer.1.EncDecAttention.q",
        "decoder.block.2.layer.0.SelfAttention.q",
        "decoder.block.2.layer.1.EncDecAttention.q",
    ]
    assert _resolve(tiny_bert(), ["k"], [1]) == ["bert.encoder.layer.1.attention.self.key"]
    with pytest.raises(AutopeftError, match="out of range for a stack of 2"):
        _resolve(model, ["q"], "0-2")  # fits the 3-layer decoder, not the 2-layer encoder


@pytest.mark.parametrize("build", [tiny_t5, tiny_bert])
def test_unknown_group_names_it_and_lists_valid_ones(build):
    with pytest.raises(AutopeftError, match=r"'attn'.*valid groups: q, k, v, o, ffn_in, ffn_out"):
        _resolve(build(), ["q", "attn"])
    with pytest.raises(AutopeftError, match="no module group"):
        _resolve(build(), [])


def test_norms():
    t5 = tiny_t5()
    info = ModelInfo.from_config(t5.config)
    assert len(resolve_norms(t5, info)) == 2 * 2 + 2 * 3 + 2
    assert "encoder.final_layer_norm" in resolve_norms(t5, info)
    lower = resolve_norms(t5, info, "lower_half")
    assert len(lower) == 2 + 3 and all(".block.0." in n for n in lower)
    bert = tiny_bert()
    info = ModelInfo.from_config(bert.config)
    assert resolve_norms(bert, info)[0] == "bert.embeddings.LayerNorm"
    assert resolve_norms(bert, info, [1]) == [
        "bert.encoder.layer.1.attention.output.LayerNorm",
        "bert.encoder.layer.1.output.LayerNorm",
    ]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared models absent")
@pytest.mark.parametrize(
    "path, per_group",
    [
        ("configs/t5-large", {"q": 24 + 48, "ffn_in": 48, "ffn_out": 48}),
        ("configs/roberta-large", {"q": 24, "o": 24, "ffn_out": 24}),
        ("all-MiniLM-L6-v2", {"v": 6, "ffn_in": 6, "ffn_out": 6}),
    ],
)
def test_real_architectures_on_meta(path, per_group):
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers import T5ForConditionalGeneration as T5

    config = AutoConfig.from_pretrained(SHARED / path)
    with torch.device("meta"):
        if config.model_type == "t5":
            model = T5(config)
        else:
            model = AutoModelForSequenceClassification.from_config(config)
    for group, n in per_group.items():
        assert len(_resolve(model, [group])) == n, group
    group, n = next(iter(per_group.items()))
    assert len(_resolve(model, [group], "upper_half")) == n // 2
