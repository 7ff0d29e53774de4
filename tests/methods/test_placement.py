"""Module groups and layer specs resolved on tiny T5/BERT and on real architectures (meta)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autopeft.errors import AutopeftError
from autopeft.methods import ModelInfo
from autopeft.methods.placement import (
    allowed_layers,
    attention_location,
    layer_indices,
    parse_group,
    resolve_blocks,
    resolve_modules,
    resolve_norms,
)
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


# ------------------------------------------------------------- qualifiers, blocks, layer masks
def _blocks(model, groups, layers="all"):
    return resolve_blocks(model, ModelInfo.from_config(model.config), groups, layers)


@pytest.mark.parametrize(
    "name, parsed",
    [
        ("q", (None, None, "q")),
        ("enc.q", ("encoder", None, "q")),
        ("dec.cross.o", ("decoder", "cross", "o")),
        ("self.attn", (None, "self", "attn")),
        ("dec.ffn", ("decoder", None, "ffn")),
        ("query", None),
        ("DenseReluDense.wo", None),
        ("SelfAttention.q", None),
        ("cross.dec.q", None),  # stack first, then attention kind
    ],
)
def test_parse_group(name, parsed):
    assert parse_group(name) == parsed


def test_attention_qualifier_only_on_attention_groups():
    with pytest.raises(AutopeftError, match="'self.' qualifies attention groups only"):
        parse_group("self.ffn_out")


def test_t5_qualifiers_pick_stack_and_attention_kind():
    model = tiny_t5()
    assert _resolve(model, ["enc.q"]) == [
        "encoder.block.0.layer.0.SelfAttention.q",
        "encoder.block.1.layer.0.SelfAttention.q",
    ]
    assert len(_resolve(model, ["dec.q"])) == 4
    assert len(_resolve(model, ["self.q"])) == 4
    assert _resolve(model, ["cross.o"]) == [
        "decoder.block.0.layer.1.EncDecAttention.o",
        "decoder.block.1.layer.1.EncDecAttention.o",
    ]
    assert _resolve(model, ["dec.self.v"], [1]) == ["decoder.block.1.layer.0.SelfAttention.v"]
    assert _resolve(model, ["dec.ffn_out"]) == [
        "decoder.block.0.layer.2.DenseReluDense.wo",
        "decoder.block.1.layer.2.DenseReluDense.wo",
    ]
    with pytest.raises(AutopeftError, match="'enc.cross.q' matches no Linear"):
        _resolve(model, ["enc.cross.q"])


def test_bert_qualifiers():
    model = tiny_bert()
    assert _resolve(model, ["enc.self.o"]) == _resolve(model, ["o"])
    with pytest.raises(AutopeftError, match="'dec.q' matches no Linear layer of this bert"):
        _resolve(model, ["dec.q"])
    with pytest.raises(AutopeftError, match="'cross.attn' matches no module"):
        _blocks(model, ["cross.attn"])


def test_blocks():
    t5 = tiny_t5()
    assert _blocks(t5, ["attn"]) == [
        "encoder.block.0.layer.0.SelfAttention",
        "encoder.block.1.layer.0.SelfAttention",
        "decoder.block.0.layer.0.SelfAttention",
        "decoder.block.0.layer.1.EncDecAttention",
        "decoder.block.1.layer.0.SelfAttention",
        "decoder.block.1.layer.1.EncDecAttention",
    ]
    assert _blocks(t5, ["enc.ffn"]) == [
        "encoder.block.0.layer.1.DenseReluDense",
        "encoder.block.1.layer.1.DenseReluDense",
    ]
    assert _blocks(t5, ["dec.cross.attn"], "mask:01") == [
        "decoder.block.1.layer.1.EncDecAttention"
    ]
    bert = tiny_bert()
    assert _blocks(bert, ["attn", "ffn"]) == [
        "bert.encoder.layer.0.attention.self",
        "bert.encoder.layer.0.output",
        "bert.encoder.layer.1.attention.self",
        "bert.encoder.layer.1.output",
    ]
    # Blocks and Linear groups do not mix: each resolver names the other kind.
    with pytest.raises(AutopeftError, match="'ffn' is a block"):
        _resolve(bert, ["ffn"])
    with pytest.raises(AutopeftError, match="'q' is a Linear group"):
        _blocks(bert, ["q"])
    with pytest.raises(AutopeftError, match="'output' matches no module"):
        _blocks(bert, ["output"])  # blocks take no raw names


def test_attention_location():
    assert attention_location("encoder.block.3.layer.0.SelfAttention") == "encoder"
    assert attention_location("decoder.block.0.layer.0.SelfAttention") == "decoder"
    assert attention_location("decoder.block.0.layer.1.EncDecAttention") == "cross"
    assert attention_location("bert.encoder.layer.1.attention.self") == "encoder"
    with pytest.raises(AutopeftError, match="not a module inside a transformer layer"):
        attention_location("shared")


@pytest.mark.parametrize(
    "spec, n, expected",
    [
        ("mask:0110", 4, [1, 2]),
        ("mask:1", 3, [0, 1, 2]),
        ("mask:01", 4, [2, 3]),  # 2 bits on 4 layers: each bit covers 2 consecutive layers
        ("mask:101", 6, [0, 1, 4, 5]),
        ("mask:100001", 24, [0, 1, 2, 3, 20, 21, 22, 23]),
    ],
)
def test_layer_masks(spec, n, expected):
    assert layer_indices(spec, n) == expected


@pytest.mark.parametrize(
    "spec, n, message",
    [
        ("mask:101", 4, "has 3 bits, which does not fit a stack of 4 layers"),
        ("mask:000", 3, "selects no layer"),
        ("mask:", 3, "not understood"),
        ("mask:12", 2, "not understood"),
        ("mask:10/01", 2, "one mask per stack .* single stack"),
    ],
)
def test_layer_masks_reject(spec, n, message):
    with pytest.raises(AutopeftError, match=message):
        layer_indices(spec, n)


def test_per_stack_masks():
    info = ModelInfo.from_config(tiny_t5(num_decoder_layers=3).config)
    assert allowed_layers(info, "mask:01/001") == {"encoder": {1}, "decoder": {2}}
    assert allowed_layers(info, "mask:1") == {"encoder": {0, 1}, "decoder": {0, 1, 2}}
    with pytest.raises(AutopeftError, match="2 bits, which does not fit a stack of 3"):
        allowed_layers(info, "mask:01")
    with pytest.raises(AutopeftError, match="must be 'mask:ENC/DEC'"):
        allowed_layers(info, "mask:01/001/1")
    bert = ModelInfo.from_config(tiny_bert().config)
    with pytest.raises(AutopeftError, match="single stack"):
        allowed_layers(bert, "mask:01/01")


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared models absent")
@pytest.mark.parametrize(
    "path, per_block",
    [
        ("configs/t5-large", {"attn": 24 + 48, "enc.ffn": 24, "dec.cross.attn": 24}),
        ("configs/roberta-large", {"attn": 24, "ffn": 24}),
    ],
)
def test_real_blocks_on_meta(path, per_block):
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers import T5ForConditionalGeneration as T5

    config = AutoConfig.from_pretrained(SHARED / path)
    with torch.device("meta"):
        model = T5(config) if config.model_type == "t5" else (
            AutoModelForSequenceClassification.from_config(config)
        )
    for group, n in per_block.items():
        assert len(_blocks(model, [group])) == n, group
    # 6 bits on 24 layers: layers 0-3 and 20-23 of every stack.
    masked = _blocks(model, ["attn"], "mask:100001")
    assert len(masked) == per_block["attn"] // 3
