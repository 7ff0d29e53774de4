"""Methods that combine several pieces in one model: MAM, UniPELT and AutoPEFT's configurations.

peft allows one adapter type per ``PeftModel``, and its prefix tuning (``past_key_values``)
cannot sit beside another tuner, so these run on our adapter tuner, which holds every piece:
prefixes inside wrapped attention modules, bottleneck adapters and (gated) LoRA
(:mod:`autopeft.methods._tuners`). They save and load as one peft adapter.

* ``mam`` — Mix-and-Match (He et al., 2022): prefix tuning in every attention module (encoder
  self-, decoder self- and cross-attention) + a scaled parallel adapter beside every FFN.
  Defaults are AdapterHub's ``MAMConfig``: prefix length 30 through an MLP of width 800,
  parallel adapter with reduction factor 2 and scaling 4.
* ``unipelt`` — UniPELT (Mao et al., 2022): LoRA on ``target_modules`` (q, v), prefix tuning in
  every attention module and a Pfeiffer adapter after every FFN, each scaled by a learned gate
  ``mean_seq(sigmoid(W_g x))`` from its own input. Defaults are AdapterHub's ``UniPELTConfig``
  (LoRA r=8, alpha=2; prefix length 10, MLP width 512; reduction factor 16).
* ``autopeft`` — the configuration space of AutoPEFT (Zhou et al., 2024): a serial adapter
  after the FFN, a parallel adapter beside it and a prefix in attention, each with its own
  size, where 0 leaves that piece out, on the layers a per-layer mask selects (``layers:
  "mask:..."``). Sizes are bottleneck widths and the prefix length, as in the paper.

``layers`` restricts every piece of a method. The prefix of each location (encoder, decoder,
cross) has its own encoder: flat (``mlp_width: 0``) or reparameterised by a two-layer MLP of
width ``mlp_width`` shared by that location's attention modules (Li & Liang, 2021).
"""

from __future__ import annotations

from typing import Any

from autopeft.errors import AutopeftError
from autopeft.methods import _peft
from autopeft.methods.adapters import (
    bottleneck,
    ffn_blocks,
    non_negative_int,
    positive_number,
    sequential_modules,
    wrap_adapter,
)
from autopeft.methods.base import Method, ModelInfo, register_method
from autopeft.methods.placement import attention_location, family, resolve_blocks


def check_prefix(model: Any, info: ModelInfo) -> str | None:
    """Why prefixes in attention cannot apply to this model, or None.

    The prefix layer's dimensions and placement are known for T5/MT5 and the BERT family;
    UMT5's attention differs.
    """
    if family(info.model_type) is None or info.model_type == "umt5":
        return f"prefixes in attention support T5/MT5 and BERT-family models, not {info.model_type}"
    return None


def prefix_sites(model: Any, info: ModelInfo, layers: Any) -> dict[str, list[str]]:
    """Every attention module ``layers`` selects, grouped by location (encoder, decoder, cross)."""
    sites: dict[str, list[str]] = {}
    for name in resolve_blocks(model, info, ["attn"], layers):
        sites.setdefault(attention_location(name), []).append(name)
    return sites


def _prefix_fields(model: Any, info: ModelInfo, params: dict, length: int) -> dict[str, Any]:
    if not length:
        return {}
    return {
        "prefix_modules": prefix_sites(model, info, params["layers"]),
        "prefix_length": length,
        "prefix_mlp_width": non_negative_int(params["mlp_width"], "mlp_width"),
    }


def _mam(model: Any, params: dict, info: ModelInfo) -> Any:
    length = _peft.positive_int(params["prefix_length"], "prefix_length")
    return wrap_adapter(
        model, info,
        parallel_modules=ffn_blocks(model, info, ["ffn"], params["layers"]),
        parallel_dim=bottleneck(model, params["reduction_factor"]),
        scaling=positive_number(params["scaling"], "scaling"),
        **_prefix_fields(model, info, params, length),
    )


def _unipelt(model: Any, params: dict, info: ModelInfo) -> Any:
    length = _peft.positive_int(params["prefix_length"], "prefix_length")
    return wrap_adapter(
        model, info,
        lora_modules=sequential_modules(model, info, params["target_modules"], params["layers"]),
        lora_r=_peft.positive_int(params["r"], "r"),
        lora_alpha=positive_number(params["lora_alpha"], "lora_alpha"),
        adapter_modules=sequential_modules(model, info, ["ffn_out"], params["layers"]),
        adapter_dim=bottleneck(model, params["reduction_factor"]),
        gated=True,
        **_prefix_fields(model, info, params, length),
    )


def _autopeft(model: Any, params: dict, info: ModelInfo) -> Any:
    serial = non_negative_int(params["serial_dim"], "serial_dim")
    parallel = non_negative_int(params["parallel_dim"], "parallel_dim")
    length = non_negative_int(params["prefix_length"], "prefix_length")
    if not (serial or parallel or length):
        raise AutopeftError(
            "autopeft: serial_dim, parallel_dim and prefix_length are all 0; nothing would train"
        )
    layers = params["layers"]
    fields: dict[str, Any] = _prefix_fields(model, info, params, length)
    if serial:
        fields |= {"adapter_modules": sequential_modules(model, info, ["ffn_out"], layers),
                   "adapter_dim": serial}
    if parallel:
        fields |= {"parallel_modules": ffn_blocks(model, info, ["ffn"], layers),
                   "parallel_dim": parallel,
                   "scaling": positive_number(params["scaling"], "scaling")}
    return wrap_adapter(model, info, **fields)


register_method(Method(
    name="mam",
    description="Mix-and-Match: prefix tuning in attention + scaled parallel adapter (own tuner)",
    params={"prefix_length": 30, "mlp_width": 800, "reduction_factor": 2, "scaling": 4.0,
            "layers": "all"},
    apply=_mam, check=check_prefix, lr_range=(1e-4, 1e-2),
))
register_method(Method(
    name="unipelt",
    description="UniPELT: gated LoRA + prefix tuning + bottleneck adapter (own tuner)",
    params={"r": 8, "lora_alpha": 2, "target_modules": ["q", "v"], "prefix_length": 10,
            "mlp_width": 512, "reduction_factor": 16, "layers": "all"},
    apply=_unipelt, check=check_prefix, lr_range=(1e-4, 1e-2),
))
register_method(Method(
    name="autopeft",
    description="AutoPEFT configuration: serial + parallel adapter + prefix, sized, per-layer",
    params={"serial_dim": 16, "parallel_dim": 16, "prefix_length": 8, "mlp_width": 0,
            "scaling": 4.0, "layers": "all"},
    apply=_autopeft, check=check_prefix, lr_range=(1e-4, 1e-2),
))
