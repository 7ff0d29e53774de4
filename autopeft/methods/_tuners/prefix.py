"""Prefix tuning inside the adapter tuner: learnable keys and values in wrapped attention.

peft's own prefix tuning feeds ``past_key_values``, which reaches only a decoder's
self-attention on T5 (the encoder never reads a cache, and peft blanks the cross-attention
cache); MAM and UniPELT need prefixes in every attention module, beside other adapter pieces
of the same tuner. So :class:`PrefixLayer` wraps the attention module itself and runs its
forward with the prefix joined in:

* keys/values of the prefix are prepended *after* the cache update, so a generation cache only
  ever holds real tokens and cached decoding sees the same prefix at every step;
* the attention mask gets "attend" columns for the prefix (an explicit mask is built when the
  model relied on ``is_causal``, whose top-left alignment would misplace the prefix); prefix
  attention needs tensor masks, i.e. eager or sdpa attention;
* T5's relative position bias gets zero columns for the prefix, and the layer returns the
  unpadded bias, which T5 shares with the next layers (that may carry no prefix).

UniPELT's prefix gate ``g = sigmoid(W_g x)`` is computed per query token from the attention
input and scales the attention mass of the prefix: ``log g`` is added to that query's prefix
logits (through the additive mask), so a closed gate removes the prefix and an open one leaves
plain prefix tuning. UniPELT multiplies the prefix keys and values by a gate averaged over the
sequence; in a decoder that average runs over later tokens, which breaks cached generation,
and a zero key still draws attention. The per-token log-gate has neither problem.

The forwards below mirror ``T5Attention.forward`` and ``BertSelfAttention.forward`` of
transformers 5 (the attention maths itself stays transformers' ``attention_interface``);
``tests/methods/test_adapters.py`` checks that without a prefix they equal the originals, for
training, a padded batch and cached generation.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers.cache_utils import EncoderDecoderCache
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from autopeft.methods._tuners.config import AdapterConfig
from autopeft.methods._tuners.layers import AdapterTunerLayer, module_device
from autopeft.methods._tuners.modules import PrefixEncoder, new_gate


class Prefix(NamedTuple):
    """A prefix ready to join an attention call."""

    keys: torch.Tensor
    values: torch.Tensor
    gate_logits: torch.Tensor | None


def attention_dims(attn: nn.Module, model_config: Any) -> tuple[int, int, int]:
    """(hidden size, heads, head size) of a T5 or BERT-family attention module."""
    if hasattr(attn, "key_value_proj_dim"):  # T5Attention
        return attn.d_model, attn.n_heads, attn.key_value_proj_dim
    return model_config.hidden_size, attn.num_attention_heads, attn.attention_head_size


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean "may attend" mask as an additive float mask."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
        ~mask, torch.finfo(dtype).min
    )


def _causal_mask(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Bottom-right aligned causal mask (query i sees keys <= i + past), additive float."""
    q_len, k_len = q.shape[-2], k.shape[-2]
    allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=q.device).tril(k_len - q_len)
    return _additive(allowed, q.dtype)[None, None]


class PrefixLayer(AdapterTunerLayer):
    """An attention module whose keys and values are extended by trainable prefixes."""

    adapter_layer_names = ("adapter_prefix_gate",)
    other_param_names = ("prefix_sites",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: AdapterConfig,
                 encoder: PrefixEncoder, site: int, model_config: Any) -> None:
        super().__init__(base_layer)
        self.is_t5 = hasattr(base_layer, "key_value_proj_dim")
        self.hidden, self.heads, self.head_dim = attention_dims(base_layer, model_config)
        self.adapter_prefix_gate = nn.ModuleDict()
        # adapter -> (prefix encoder of this location, index of this module); not submodules:
        # the encoders belong to the tuner and are saved once, there.
        self.prefix_sites: dict[str, tuple[PrefixEncoder, int]] = {}
        self.update_layer(adapter_name, config, encoder, site)

    def update_layer(self, adapter_name: str, config: AdapterConfig, encoder: PrefixEncoder,
                     site: int) -> None:
        self.prefix_sites[adapter_name] = (encoder, site)
        if config.gated:
            device = module_device(self.get_base_layer())
            self.adapter_prefix_gate[adapter_name] = new_gate(self.hidden, device)
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def _prefix(self, x: torch.Tensor) -> Prefix | None:
        """Keys, values (batch, heads, length, head size) and gate logits of the active adapters.

        The gate logits (batch, 1, queries, length) are ``log g`` per query (0 for an ungated
        adapter beside a gated one), or None when no active adapter is gated.
        """
        names = [n for n in self.active_adapters if n in self.prefix_sites]
        if self.disable_adapters or not names:
            return None
        gated = any(n in self.adapter_prefix_gate for n in names)
        batch, queries = x.shape[0], x.shape[1]
        keys, values, logits = [], [], []
        for name in names:
            encoder, site = self.prefix_sites[name]
            for tensor, out in zip(encoder.site(site), (keys, values), strict=True):
                tensor = tensor.view(1, -1, self.heads, self.head_dim).transpose(1, 2)
                out.append(tensor.expand(batch, -1, -1, -1))
            length = keys[-1].shape[2]
            if name in self.adapter_prefix_gate:
                gate = self.adapter_prefix_gate[name]
                log_g = F.logsigmoid(gate(x.to(gate.weight.dtype)))  # (batch, queries, 1)
                logits.append(log_g.unsqueeze(1).expand(-1, -1, -1, length))
            elif gated:
                logits.append(x.new_zeros(batch, 1, queries, length))
        return Prefix(torch.cat(keys, dim=2).to(x.dtype), torch.cat(values, dim=2).to(x.dtype),
                      torch.cat(logits, dim=-1).to(x.dtype) if gated else None)

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        prefix = self._prefix(hidden_states)
        if self.is_t5:
            return t5_attention(self.base_layer, prefix, hidden_states, *args, **kwargs)
        return bert_attention(self.base_layer, prefix, hidden_states, *args, **kwargs)


def _interface(attn: nn.Module) -> Any:
    eager = sys.modules[type(attn).__module__].eager_attention_forward
    return ALL_ATTENTION_FUNCTIONS.get_interface(attn.config._attn_implementation, eager)


def _join(prefix: Prefix | None, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
          mask: torch.Tensor | None, causal: bool) -> tuple:
    """Keys, values and mask with the prefix prepended (unchanged without a prefix)."""
    if prefix is None:
        return k, v, mask
    if mask is not None and not isinstance(mask, torch.Tensor):
        raise TypeError(
            f"prefixes need eager or sdpa attention (tensor masks), got a {type(mask).__name__}"
        )
    length = prefix.keys.shape[2]
    if mask is None and causal and q.shape[-2] > 1:
        mask = _causal_mask(q, k)  # is_causal would align the causal mask to the prefix
    if prefix.gate_logits is not None:
        if mask is None:
            mask = q.new_zeros(1, 1, q.shape[-2], k.shape[-2])
        elif mask.dtype == torch.bool:
            mask = _additive(mask, q.dtype)
        pad = prefix.gate_logits
    elif mask is None:
        pad = None
    elif mask.dtype == torch.bool:
        pad = mask.new_ones(1, 1, 1, length)
    else:
        pad = mask.new_zeros(1, 1, 1, length)
    if pad is not None:
        lead = torch.broadcast_shapes(mask.shape[:-1], pad.shape[:-1])
        mask = torch.cat([pad.expand(*lead, length), mask.expand(*lead, mask.shape[-1])], -1)
    return torch.cat([prefix.keys, k], dim=2), torch.cat([prefix.values, v], dim=2), mask


def t5_attention(attn: nn.Module, prefix: Prefix | None, hidden_states: torch.Tensor,
                 mask: torch.Tensor | None = None, key_value_states: torch.Tensor | None = None,
                 position_bias: torch.Tensor | None = None, past_key_values: Any = None,
                 **kwargs: Any) -> tuple:
    """``T5Attention.forward`` with ``prefix`` keys/values joined after the cache update."""
    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, attn.key_value_proj_dim)
    past_seen = past_key_values.get_seq_length(attn.layer_idx) if past_key_values is not None else 0
    past_seen = past_seen.clone() if isinstance(past_seen, torch.Tensor) else past_seen
    is_cross = key_value_states is not None
    query = attn.q(hidden_states).view(hidden_shape).transpose(1, 2)

    is_updated = False
    cache = past_key_values
    if isinstance(past_key_values, EncoderDecoderCache):
        is_updated = past_key_values.is_updated.get(attn.layer_idx)
        cache = (past_key_values.cross_attention_cache if is_cross
                 else past_key_values.self_attention_cache)
    current = key_value_states if is_cross else hidden_states
    if is_cross and past_key_values is not None and is_updated:
        key = cache.layers[attn.layer_idx].keys
        value = cache.layers[attn.layer_idx].values
    else:
        kv_shape = (*current.shape[:-1], -1, attn.key_value_proj_dim)
        key = attn.k(current).view(kv_shape).transpose(1, 2)
        value = attn.v(current).view(kv_shape).transpose(1, 2)
        if past_key_values is not None:
            key, value = cache.update(key, value, attn.layer_idx)
            if is_cross and isinstance(past_key_values, EncoderDecoderCache):
                past_key_values.is_updated[attn.layer_idx] = True

    if position_bias is None:
        key_length = key.shape[-2]
        if not attn.has_relative_attention_bias:
            position_bias = torch.zeros((1, attn.n_heads, input_shape[1], key_length),
                                        device=query.device, dtype=query.dtype)
            if attn.gradient_checkpointing and attn.training:
                position_bias.requires_grad = True
        else:
            position_bias = attn.compute_bias(input_shape[1], key_length, device=query.device,
                                              past_seen_tokens=past_seen)

    causal = bool(getattr(attn, "is_causal", False)) and not is_cross
    key, value, mask = _join(prefix, query, key, value, mask, causal)
    bias = position_bias if prefix is None else F.pad(position_bias, (prefix.keys.shape[2], 0))
    out, weights = _interface(attn)(
        attn, query, key, value, mask, dropout=0.0 if not attn.training else attn.dropout,
        scaling=attn.scaling, position_bias=bias, **kwargs,
    )
    out = attn.o(out.reshape(*input_shape, -1).contiguous())
    return out, position_bias, weights


def bert_attention(attn: nn.Module, prefix: Prefix | None, hidden_states: torch.Tensor,
                   attention_mask: torch.Tensor | None = None, past_key_values: Any = None,
                   **kwargs: Any) -> tuple:
    """``BertSelfAttention.forward`` with ``prefix`` keys/values joined after the cache update."""
    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, attn.attention_head_size)
    query = attn.query(hidden_states).view(*hidden_shape).transpose(1, 2)
    key = attn.key(hidden_states).view(*hidden_shape).transpose(1, 2)
    value = attn.value(hidden_states).view(*hidden_shape).transpose(1, 2)
    if past_key_values is not None:
        cache = past_key_values
        if isinstance(past_key_values, EncoderDecoderCache):
            cache = past_key_values.self_attention_cache
        key, value = cache.update(key, value, attn.layer_idx)

    causal = bool(getattr(attn, "is_causal", False))
    key, value, attention_mask = _join(prefix, query, key, value, attention_mask, causal)
    out, weights = _interface(attn)(
        attn, query, key, value, attention_mask,
        dropout=0.0 if not attn.training else attn.dropout.p, scaling=attn.scaling, **kwargs,
    )
    return out.reshape(*input_shape, -1).contiguous(), weights
