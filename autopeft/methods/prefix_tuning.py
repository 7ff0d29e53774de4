"""Prefix tuning (Li & Liang, 2021) through peft: trainable key/value prefixes per layer.

peft stores one embedding of ``num_virtual_tokens`` rows, each holding keys and values for
every layer (``num_layers * 2 * token_dim``); with ``prefix_projection`` a two-layer MLP of
width ``encoder_hidden_size`` produces them from ``token_dim``-wide token embeddings.

On T5 (peft task ``SEQ_2_SEQ_LM``) the prefix reaches only the decoder's self-attention:
peft passes it as ``past_key_values``, which the T5 encoder never reads, and it replaces the
cross-attention cache by an empty one. Two peft defaults are wrong for T5 and are set here:
``num_layers`` (peft takes the encoder depth; the prefix feeds the decoder, so
``num_decoder_layers``) and ``token_dim`` (peft takes ``d_model``; keys and values are
``num_heads * d_kv`` wide, which differs on t5-3b and t5-11b).
"""

from __future__ import annotations

from typing import Any

from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    from peft import PrefixTuningConfig

    extra: dict[str, Any] = {}
    if info.is_seq2seq:
        cfg = model.config
        extra = {
            "num_layers": info.num_decoder_layers,
            "token_dim": cfg.num_heads * cfg.d_kv,
            "num_attention_heads": cfg.num_heads,
        }
    config = PrefixTuningConfig(
        task_type=_peft.task_type(info),
        num_virtual_tokens=_peft.positive_int(params["num_virtual_tokens"], "num_virtual_tokens"),
        prefix_projection=_peft.boolean(params["prefix_projection"], "prefix_projection"),
        encoder_hidden_size=_peft.positive_int(
            params["encoder_hidden_size"], "encoder_hidden_size"
        ),
        **extra,
    )
    return _peft.wrap(model, config, info)


METHOD = register_method(
    Method(
        name="prefix_tuning",
        description="Prefix tuning: trainable key/value prefixes in every attention layer (peft)",
        params={"num_virtual_tokens": 20, "prefix_projection": False, "encoder_hidden_size": 512},
        apply=_apply,
        lr_range=(1e-4, 3e-2),
    )
)
