"""The custom peft tuners: where pieces sit, what they compute, and the prefix attention forward."""

from __future__ import annotations

import pytest
import torch

from autopeft.methods import ModelInfo, get_method
from autopeft.testing import padded_batch, set_attention, tiny_bert, tiny_t5

ARCHS = {"t5": tiny_t5, "bert": tiny_bert}
TINY = {"compacter": {"reduction_factor": 4}, "compacter++": {"reduction_factor": 4},
        "mam": {"mlp_width": 8}, "unipelt": {"mlp_width": 8}}


def build(name, arch, params=None, **model_kwargs):
    model = ARCHS[arch](**model_kwargs)
    info = ModelInfo.from_config(model.config)
    return get_method(name).build(model, {**TINY.get(name, {}), **(params or {})}, info)


# ---------------------------------------------------------------------------- where pieces sit
def wrapped(model, cls_name):
    return sorted(n.removeprefix("base_model.model.") for n, m in model.named_modules()
                  if type(m).__name__ == cls_name)


def test_houlsby_sits_after_self_attention_and_ffn():
    t5 = build("houlsby", "t5")
    assert wrapped(t5, "SequentialAdapterLayer") == [
        f"{stack}.block.{i}.{path}"
        for stack, paths in (("decoder", ("layer.0.SelfAttention.o", "layer.2.DenseReluDense.wo")),
                             ("encoder", ("layer.0.SelfAttention.o", "layer.1.DenseReluDense.wo")))
        for i in (0, 1) for path in paths
    ]
    bert = build("houlsby", "bert")
    assert wrapped(bert, "SequentialAdapterLayer") == [
        f"bert.encoder.layer.{i}.{p}" for i in (0, 1)
        for p in ("attention.output.dense", "output.dense")
    ]


def test_composite_pieces_nest():
    # AutoPEFT: the serial adapter wraps wo inside the FFN that the parallel adapter wraps.
    t5 = build("autopeft", "t5")
    ffn = t5.get_base_model().encoder.block[0].layer[1].DenseReluDense
    assert type(ffn).__name__ == "ParallelAdapterLayer"
    assert type(ffn.base_layer.wo).__name__ == "SequentialAdapterLayer"
    # UniPELT: LoRA on q and v inside the prefix-carrying attention modules, every one of them.
    uni = build("unipelt", "t5")
    assert len(wrapped(uni, "PrefixLayer")) == 6
    assert all(n.endswith((".base_layer.q", ".base_layer.v"))
               for n in wrapped(uni, "LoraLayer")) and len(wrapped(uni, "LoraLayer")) == 12


ZERO_INIT = [("houlsby", {}), ("pfeiffer", {}), ("parallel", {}), ("compacter", {}),
             ("compacter++", {}), ("bitfit", {}), ("lokr", {}), ("vera", {}),
             ("autopeft", {"prefix_length": 0})]


@pytest.mark.parametrize(
    "arch, name, params",
    [(a, n, p) for a in ARCHS for n, p in ZERO_INIT if (a, n) != ("t5", "bitfit")],
)
def test_adapted_model_starts_as_base_model(arch, name, params):
    base = ARCHS[arch]().eval()
    model = build(name, arch, params).eval()
    batch = padded_batch(base.config)
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, base(**batch).logits, atol=1e-6)


# ------------------------------------------------------------------------------ what they compute
def test_phm_weight_is_a_sum_of_kronecker_products():
    model = build("compacter", "bert")
    layer = model.get_base_model().bert.encoder.layer[0].output.dense.adapter_bottleneck["default"]
    down = layer.down
    rule = model.base_model.adapter_phm_rule["default"]
    expected = sum(torch.kron(rule[i], down.s[i] @ down.t[i]) for i in range(4))
    assert torch.allclose(down.weight(), expected, atol=1e-6)
    assert rule is layer.up._rule[0]["default"], "one rule tensor, shared by every PHM layer"


def test_bert_parallel_adapter_adds_to_ffn_output_before_layernorm():
    model = build("parallel", "bert", {"scaling": 2.0}).eval()
    out = model.get_base_model().bert.encoder.layer[0].output
    with torch.no_grad():
        for p in out.adapter_bottleneck.parameters():
            p.normal_()
        h, x = torch.randn(2, 5, 64), torch.randn(2, 5, 32)
        ffn = out.base_layer
        adapter = out.adapter_bottleneck["default"]
        by_hand = ffn.LayerNorm(ffn.dense(h) + x + 2.0 * adapter.up(torch.relu(adapter.down(x))))
        assert torch.allclose(out(h, x), by_hand, atol=1e-5)


def test_gates_scale_each_piece_per_token():
    model = build("unipelt", "bert")
    q = model.get_base_model().bert.encoder.layer[0].attention.self.base_layer.query
    lora = q.adapter_lora["default"]
    with torch.no_grad():
        lora.B.weight.normal_()
        x = torch.randn(2, 5, 32)
        gate = torch.sigmoid(lora.gate(x))  # (2, 5, 1): one gate per token
        expected = q.base_layer(x) + gate * lora.B(lora.A(x)) * (2 / 8)
        assert torch.allclose(q(x), expected, atol=1e-6)
        lora.gate.bias.fill_(-1e4)  # a closed gate removes the piece
        assert torch.allclose(q(x), q.base_layer(x), atol=1e-6)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_closed_prefix_gates_remove_the_prefix(arch):
    # UniPELT's LoRA and adapter start as identities; closing every prefix gate (log g -> -inf
    # on the prefix logits) leaves the base model, in a padded batch.
    base, model = ARCHS[arch]().eval(), build("unipelt", arch).eval()
    batch = padded_batch(base.config)
    with torch.no_grad():
        expected = base(**batch).logits
        assert not torch.allclose(model(**batch).logits, expected, atol=1e-4)
        for name, p in model.named_parameters():
            if "adapter_prefix_gate" in name and name.endswith("bias"):
                p.fill_(-1e4)
        assert torch.allclose(model(**batch).logits, expected, atol=1e-5)


def test_bitfit_trains_bias_deltas_and_merges():
    model = build("bitfit", "bert").eval()
    deltas = {n: p for n, p in model.named_parameters() if "bitfit_bias" in n}
    assert all(p.requires_grad for p in deltas.values())
    assert not any("classifier" in n for n in deltas)
    batch = padded_batch(model.config)
    with torch.no_grad():
        for p in deltas.values():
            p.normal_()
        adapted = model(**batch).logits
        merged = model.merge_and_unload()
        assert type(merged).__name__ == "BertForSequenceClassification"
        assert torch.allclose(merged(**batch).logits, adapted, atol=1e-5)


# ------------------------------------------------------------------------ the prefix attention
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_prefix_forward_without_prefix_equals_transformers(impl):
    # With the adapters disabled, our attention forwards run without a prefix: they must
    # reproduce transformers' own, on a padded batch and in cached generation.
    for arch in ARCHS:
        base, model = ARCHS[arch]().eval(), build("mam", arch).eval()
        set_attention(base, impl)
        set_attention(model, impl)
        batch = padded_batch(base.config)
        with torch.no_grad(), model.disable_adapter():
            assert torch.equal(model(**batch).logits, base(**batch).logits)
            if arch == "t5":
                kw = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                      "max_new_tokens": 4, "do_sample": False}
                assert torch.equal(model.generate(**kw), base.generate(**kw))


def test_eager_and_sdpa_agree_with_prefix():
    for arch in ARCHS:
        model = build("mam", arch).eval()
        batch = padded_batch(model.config)
        outs = []
        for impl in ("eager", "sdpa"):
            set_attention(model, impl)
            with torch.no_grad():
                outs.append(model(**batch).logits)
        assert torch.allclose(*outs, atol=1e-5), arch


def test_t5_prefix_reaches_encoder_decoder_and_cross_attention():
    model = build("mam", "t5", {"mlp_width": 0}).eval()
    batch = padded_batch(model.config)
    encoder = model.get_base_model().encoder

    def run():
        with torch.no_grad():
            enc = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            return enc.last_hidden_state, model(**batch).logits

    enc0, out0 = run()
    prefixes = model.base_model.adapter_prefix["default"]
    assert set(prefixes) == {"encoder", "decoder", "cross"}
    for location, encoder_sees in (("encoder", True), ("decoder", False), ("cross", False)):
        with torch.no_grad():
            prefixes[location].tokens.add_(1.0)
        enc1, out1 = run()
        assert torch.equal(enc0, enc1) != encoder_sees, location
        assert not torch.equal(out0, out1), location
        enc0, out0 = enc1, out1
