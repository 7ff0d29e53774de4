"""The prefix layer against transformers' real attention modules.

:class:`PrefixLayer` mirrors one thing of transformers: that an attention module dispatches
its attention call through ``self.config._attn_implementation`` with its post-cache keys and
values. These tests pin that, on the installed transformers (the locked version in CI, the
newest one through ``scripts/upgrade_deps.sh``): the route without a prefix gives exactly
transformers' outputs, and with a prefix it gives attention computed here by hand from the
module's own projections.
"""

from __future__ import annotations

import pytest
import torch

from autopeft.methods import ModelInfo, get_method
from autopeft.methods._tuners.prefix import PrefixLayer, _PrefixDispatch
from autopeft.testing import padded_batch, set_attention, tiny_bert, tiny_t5

ARCHS = {"t5": tiny_t5, "bert": tiny_bert}
IMPLS = ["eager", "sdpa"]


def build(arch, params=None, name="prefix_tuning"):
    torch.manual_seed(0)
    base = ARCHS[arch]()
    torch.manual_seed(0)
    model = ARCHS[arch]()
    info = ModelInfo.from_config(model.config)
    defaults = {"num_virtual_tokens": 3} if name == "prefix_tuning" else {"mlp_width": 8}
    return base, get_method(name).build(model, {**defaults, **(params or {})}, info)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("arch", list(ARCHS))
def test_route_without_prefix_trains_exactly_like_transformers(arch, impl):
    # Disabled adapters still route every attention call through prefix_attention (with no
    # prefix): loss and every gradient must be transformers' own, bit for bit.
    base, model = build(arch)
    set_attention(base, impl)
    set_attention(model, impl)
    base.train()
    model.train()
    batch = padded_batch(base.config)
    torch.manual_seed(1)
    base_loss = base(**batch).loss
    base_loss.backward()
    with model.disable_adapter():
        for p in model.parameters():
            p.requires_grad_(True)
        torch.manual_seed(1)
        loss = model(**batch).loss
        loss.backward()
    assert torch.equal(loss, base_loss)
    # peft's names: wrapped modules under .base_layer, the head's frozen copy .original_module
    # (the one a disabled adapter uses).
    grads = {n.replace(".base_layer", "").replace(".original_module", ""): p.grad
             for n, p in model.get_base_model().named_parameters()
             if "adapter_" not in n and "modules_to_save" not in n}
    for name, p in base.named_parameters():
        assert torch.equal(grads[name], p.grad), name


def test_dispatch_is_undone_after_each_call_even_on_error():
    _, model = build("bert")
    layers = [m for m in model.modules() if isinstance(m, PrefixLayer)]
    assert layers
    batch = padded_batch(model.config)
    model(**batch)
    assert not any(isinstance(m.base_layer.config, _PrefixDispatch) for m in layers)
    bad = dict(batch, attention_mask=batch["attention_mask"][:, :3])
    with pytest.raises(Exception):  # noqa: B017  (whatever transformers raises for bad shapes)
        model(**bad)
    assert not any(isinstance(m.base_layer.config, _PrefixDispatch) for m in layers)


def _by_hand(q, k, v, pk, pv, bias, key_mask, heads, scale):
    """softmax(q [pk; k]^T * scale + bias + mask) [pv; v], heads split, for one module."""
    b, n, _ = q.shape

    def split(x):
        return x.view(x.shape[0], -1, heads, x.shape[-1] // heads).transpose(1, 2)

    pk, pv = (split(t.unsqueeze(0).expand(b, -1, -1)) for t in (pk, pv))
    keys, values = torch.cat([pk, split(k)], 2), torch.cat([pv, split(v)], 2)
    scores = split(q) @ keys.transpose(-1, -2) * scale
    length = pk.shape[2]
    if bias is not None:
        scores = scores + torch.nn.functional.pad(bias, (length, 0))
    allowed = torch.cat([torch.ones(b, length, dtype=torch.bool), key_mask.bool()], 1)
    scores = scores.masked_fill(~allowed[:, None, None, :], torch.finfo(scores.dtype).min)
    out = scores.softmax(-1) @ values
    return out.transpose(1, 2).reshape(b, n, -1)


@pytest.mark.parametrize("impl", IMPLS)
def test_bert_prefix_attention_equals_attention_by_hand(impl):
    _, model = build("bert", {"num_virtual_tokens": 3})
    set_attention(model, impl)
    model.eval()
    layer = model.get_base_model().bert.encoder.layer[0].attention.self
    assert isinstance(layer, PrefixLayer)
    attn = layer.base_layer
    batch = padded_batch(model.config)
    captured = {}
    layer.register_forward_hook(lambda m, args, out: captured.update(x=args[0], out=out[0]))
    with torch.no_grad():
        model(**batch)
        x = captured["x"]
        encoder, site = layer.prefix_sites["default"]
        pk, pv = encoder.site(site)
        expected = _by_hand(attn.query(x), attn.key(x), attn.value(x), pk, pv, None,
                            batch["attention_mask"], attn.num_attention_heads, attn.scaling)
    assert torch.allclose(captured["out"], expected, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_t5_prefix_attention_equals_attention_by_hand(impl):
    # The first encoder block computes T5's relative position bias; the prefix columns get
    # zero bias, and the module still hands the unpadded bias on to the next blocks.
    _, model = build("t5", {"num_virtual_tokens": 2})
    set_attention(model, impl)
    model.eval()
    layer = model.get_base_model().encoder.block[0].layer[0].SelfAttention
    assert isinstance(layer, PrefixLayer)
    attn = layer.base_layer
    batch = padded_batch(model.config)
    captured = {}
    layer.register_forward_hook(
        lambda m, args, out: captured.update(x=args[0], out=out[0], bias=out[1])
    )
    with torch.no_grad():
        model(**batch)
        x, n = captured["x"], captured["x"].shape[1]
        bias = attn.compute_bias(n, n, device=x.device)
        encoder, site = layer.prefix_sites["default"]
        pk, pv = encoder.site(site)
        heads = attn.n_heads
        expected = attn.o(_by_hand(attn.q(x), attn.k(x), attn.v(x), pk, pv, bias,
                                   batch["attention_mask"], heads, attn.scaling))
    assert captured["bias"].shape[-1] == n, "the bias passed on must not include the prefix"
    assert torch.allclose(captured["out"], expected, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["prefix_tuning", "mam", "unipelt"])
def test_t5_cached_generation_with_prefix_matches_full_forward(name, impl):
    # The cache holds real tokens only; every decoding step must see the same prefix as a
    # teacher-forced forward over the generated sequence (unipelt: through its gates too).
    _, model = build("t5", name=name)
    set_attention(model, impl)
    model.eval()
    batch = padded_batch(model.config)
    with torch.no_grad():
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             max_new_tokens=4, do_sample=False, output_scores=True,
                             return_dict_in_generate=True)
        forced = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       decoder_input_ids=out.sequences[:, :-1]).logits
    assert torch.allclose(forced, torch.stack(out.scores, dim=1), atol=1e-4)
