"""Prefix tuning inside the adapter tuner: learnable keys and values in wrapped attention.

peft's own prefix tuning feeds ``past_key_values``: it reaches only a decoder's
self-attention on T5 (the encoder never reads a cache, and peft blanks the cross-attention
cache), and since transformers 5.24 BERT-family models take no cache at all. Prefix tuning as
Li & Liang and the survey define it puts prefixes in every attention module, and MAM and
UniPELT need them beside other adapter pieces of the same tuner. So :class:`PrefixLayer` wraps
the attention module itself.

It does not re-implement the attention forward. transformers 5 attention modules (T5, BERT,
RoBERTa, ...) project queries, keys and values, update the generation cache, and then call
``ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager)(self, q, k, v,
mask, **kwargs)``. During its call :class:`PrefixLayer` shows the wrapped module a config whose
``_attn_implementation`` names :func:`prefix_attention`, registered in transformers' public
``AttentionInterface``; that function joins the prefix to the keys, values, mask and T5's
position bias, then calls the implementation the model was really configured with. Hence:

* keys/values of the prefix are joined *after* the cache update, so a generation cache only
  ever holds real tokens and cached decoding sees the same prefix at every step;
* the attention mask gets "attend" columns for the prefix (an explicit mask is built when the
  model relied on ``is_causal``, whose top-left alignment would misplace the prefix); prefix
  attention needs tensor masks, i.e. eager or sdpa attention;
* T5's relative position bias gets zero columns for the prefix inside the attention call only;
  the module still returns the unpadded bias, which T5 shares with the next layers.

The one thing mirrored from transformers is that dispatch: the module reads
``self.config._attn_implementation`` and passes itself and its post-cache keys and values.
``tests/methods/test_prefix.py`` pins it against the real modules: through the dispatch
without a prefix the outputs equal transformers' own (training, padded batch, cached
generation), and with a prefix they equal attention computed by hand.

UniPELT's prefix gate ``g = sigmoid(W_g x)`` is computed per query token from the attention
input and scales the attention mass of the prefix: ``log g`` is added to that query's prefix
logits (through the additive mask), so a closed gate removes the prefix and an open one leaves
plain prefix tuning. UniPELT multiplies the prefix keys and values by a gate averaged over the
sequence; in a decoder that average runs over later tokens, which breaks cached generation,
and a zero key still draws attention. The per-token log-gate has neither problem.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from autopeft.methods._tuners.config import AdapterConfig
from autopeft.methods._tuners.layers import AdapterTunerLayer, module_device
from autopeft.methods._tuners.modules import PrefixEncoder, new_gate

PREFIX_ATTENTION = "autopeft_prefix"


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


class _PrefixDispatch:
    """The model config as a wrapped attention module sees it during one call.

    Every attribute is the real config's, except ``_attn_implementation``, which routes the
    module's attention call to :func:`prefix_attention`; ``prefix`` rides along (None when no
    adapter with a prefix is active).
    """

    __slots__ = ("real", "prefix")

    def __init__(self, real: Any, prefix: Prefix | None) -> None:
        self.real = real
        self.prefix = prefix

    @property
    def _attn_implementation(self) -> str:
        return PREFIX_ATTENTION

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _implementation(module: nn.Module, name: str) -> Any:
    # The caller's own eager function is its module's ``eager_attention_forward`` (T5's adds
    # the position bias); it is passed as the default, which we cannot see from here.
    eager = sys.modules[type(module).__module__].eager_attention_forward
    return ALL_ATTENTION_FUNCTIONS.get_interface(name, eager)


def prefix_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor,
                     value: torch.Tensor, attention_mask: torch.Tensor | None,
                     **kwargs: Any) -> tuple:
    """Attention with the module's prefix joined, computed by the configured implementation."""
    dispatch = module.config
    if not isinstance(dispatch, _PrefixDispatch):
        raise RuntimeError(
            f"the '{PREFIX_ATTENTION}' attention runs only inside an autopeft PrefixLayer"
        )
    real = _implementation(module, dispatch.real._attn_implementation)
    prefix = dispatch.prefix
    if prefix is not None:
        causal = bool(getattr(module, "is_causal", False))
        key, value, attention_mask = _join(prefix, query, key, value, attention_mask, causal)
        if kwargs.get("position_bias") is not None:
            kwargs["position_bias"] = F.pad(kwargs["position_bias"], (prefix.keys.shape[2], 0))
    return real(module, query, key, value, attention_mask, **kwargs)



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


AttentionInterface.register(PREFIX_ATTENTION, prefix_attention)


class PrefixLayer(AdapterTunerLayer):
    """An attention module whose keys and values are extended by trainable prefixes."""

    adapter_layer_names = ("adapter_prefix_gate",)
    other_param_names = ("prefix_sites",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: AdapterConfig,
                 encoder: PrefixEncoder, site: int, model_config: Any) -> None:
        super().__init__(base_layer)
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
        # The wrapped module's own forward runs; only its attention call is routed through
        # prefix_attention, for this call (also without a prefix, so tests pin the route).
        attn = self.base_layer
        real = attn.config
        attn.config = _PrefixDispatch(real, self._prefix(hidden_states))
        try:
            return attn(hidden_states, *args, **kwargs)
        finally:
            attn.config = real
