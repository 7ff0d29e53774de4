"""Prefix tuning (Li & Liang, 2021): trainable key/value prefixes in every attention module.

Each attention module that ``layers`` selects gets ``num_virtual_tokens`` extra keys and
values: on T5 in the encoder's self-attention, the decoder's self-attention and its
cross-attention, on BERT-family encoders in every layer (the survey's setting). Flat prefixes
hold the keys and values directly (``num_virtual_tokens * 2 * inner`` per module, ``inner``
= heads x head size); with ``prefix_projection`` each location (encoder, decoder, cross) has
``num_virtual_tokens`` tokens of model width reparameterised by a two-layer MLP of width
``encoder_hidden_size``, as in the paper and peft.

It runs on our adapter tuner (:mod:`autopeft.methods._tuners.prefix`), not on peft's
``PrefixTuningConfig``: peft passes the prefix as ``past_key_values``, which reaches only T5's
decoder self-attention and which BERT-family models no longer accept since transformers 5.24.
The parameter names stay peft's.
"""

from __future__ import annotations

from typing import Any

from autopeft.methods import _peft
from autopeft.methods.adapters import wrap_adapter
from autopeft.methods.base import Method, ModelInfo, register_method
from autopeft.methods.composite import check_prefix, prefix_sites


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    length = _peft.positive_int(params["num_virtual_tokens"], "num_virtual_tokens")
    projection = _peft.boolean(params["prefix_projection"], "prefix_projection")
    width = _peft.positive_int(params["encoder_hidden_size"], "encoder_hidden_size")
    return wrap_adapter(
        model, info,
        prefix_modules=prefix_sites(model, info, params["layers"]),
        prefix_length=length,
        prefix_mlp_width=width if projection else 0,
    )


METHOD = register_method(
    Method(
        name="prefix_tuning",
        description="Prefix tuning: trainable key/value prefixes in every attention module "
                    "(own tuner)",
        params={"num_virtual_tokens": 20, "prefix_projection": False, "encoder_hidden_size": 512,
                "layers": "all"},
        apply=_apply,
        check=check_prefix,
        lr_range=(1e-4, 3e-2),
    )
)
