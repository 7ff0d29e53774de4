"""Bottleneck adapters: Houlsby, Pfeiffer, parallel, Compacter and Compacter++.

peft has no bottleneck adapters, so these run on our peft tuner
(:mod:`autopeft.methods._tuners`, peft type ``AUTOPEFT_ADAPTER``); they save and load like any
peft adapter once the tuner is registered (:mod:`autopeft.methods.saving`).

An adapter is ``h + up(act(down(h)))`` with ``down: d -> d / reduction_factor`` (``d`` is the
model width) and ``up`` starting at zero, so training starts from the base model.

* ``houlsby`` (Houlsby et al., 2019): after the attention output projection and after the FFN
  output projection of every layer (``target_modules: [self.o, ffn_out]``; in a T5 decoder the
  attention adapter follows self-attention, as AdapterHub places it), swish.
* ``pfeiffer`` (Pfeiffer et al., 2021): after the FFN only (``[ffn_out]``), ReLU.
* ``parallel`` (He et al., 2022): ``scaling * up(relu(down(x)))`` from the FFN input ``x``,
  added to the FFN output (``[ffn]``).
* ``compacter`` / ``compacter++`` (Karimi Mahabadi et al., 2021): Houlsby / Pfeiffer placement
  with PHM weights ``sum_i A_i (x) s_i t_i`` (``phm_dim`` n, ``phm_rank``), the ``A_i`` shared by
  every adapter, GELU.

Trainable parameters per adapter of width ``d`` and bottleneck ``m``: dense ``2dm + m + d``;
PHM ``2 * phm_rank * (d + m) + m + d``, plus ``phm_dim ** 3`` shared rule entries once.
Defaults are AdapterHub's (``DoubleSeqBnConfig``, ``SeqBnConfig``, ``ParBnConfig``,
``CompacterConfig``). ``target_modules`` and ``layers`` follow
:mod:`autopeft.methods.placement`.
"""

from __future__ import annotations

from typing import Any

from autopeft.errors import AutopeftError
from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method
from autopeft.methods.placement import BLOCKS, parse_group, resolve_blocks, resolve_modules


def hidden_size(model: Any) -> int:
    """The model width (``d_model`` for T5, ``hidden_size`` for the BERT family)."""
    return getattr(model.config, "d_model", None) or model.config.hidden_size


def positive_number(value: Any, param: str) -> float:
    """``value`` as a float > 0, or an error that names ``param``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise AutopeftError(f"{param} must be a number > 0, got {value!r}")
    return float(value)


def non_negative_int(value: Any, param: str) -> int:
    """``value`` as an int >= 0 (0 switches a piece off), or an error that names ``param``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AutopeftError(f"{param} must be an integer >= 0, got {value!r}")
    return value


def bottleneck(model: Any, reduction_factor: Any, phm_dim: int = 0) -> int:
    """``d // reduction_factor``, checked to be >= 1 (and divisible by ``phm_dim``)."""
    rf = _peft.positive_int(reduction_factor, "reduction_factor")
    d = hidden_size(model)
    if d // rf < 1:
        raise AutopeftError(f"reduction_factor {rf} leaves no bottleneck for width {d}")
    dim = d // rf
    if phm_dim and (dim % phm_dim or d % phm_dim):
        raise AutopeftError(
            f"phm_dim {phm_dim} must divide the model width {d} and the bottleneck {dim} "
            f"(width / reduction_factor {rf})"
        )
    return dim


def sequential_modules(model: Any, info: ModelInfo, groups: Any, layers: Any) -> list[str]:
    """Linear modules that get a sequential adapter after them."""
    groups = _peft.as_names(groups, "target_modules")
    return resolve_modules(model, info, groups, layers)


def ffn_blocks(model: Any, info: ModelInfo, groups: Any, layers: Any) -> list[str]:
    """FFN blocks that get a parallel adapter beside them (``ffn``, ``enc.ffn``, ...)."""
    groups = _peft.as_names(groups, "target_modules")
    for g in groups:
        parsed = parse_group(g)
        if parsed is None or parsed[2] != "ffn":
            raise AutopeftError(
                f"target_modules '{g}': parallel adapters go beside the FFN; use ffn, enc.ffn "
                f"or dec.ffn (blocks: {', '.join(BLOCKS)})"
            )
    return resolve_blocks(model, info, groups, layers)


def wrap_adapter(model: Any, info: ModelInfo, **fields: Any) -> Any:
    """``get_peft_model`` with an :class:`AdapterConfig` of ``fields`` (our tuner)."""
    from autopeft.methods._tuners import AdapterConfig, register

    register()
    try:
        config = AdapterConfig(task_type=_peft.task_type(info), **fields)
    except ValueError as e:
        raise AutopeftError(str(e)) from None
    return _peft.wrap(model, config, info)


def _sequential(non_linearity: str, phm: bool):
    def apply(model: Any, params: dict, info: ModelInfo) -> Any:
        phm_dim = _peft.positive_int(params["phm_dim"], "phm_dim") if phm else 0
        fields: dict[str, Any] = {}
        if phm:
            fields = {"phm_dim": phm_dim,
                      "phm_rank": _peft.positive_int(params["phm_rank"], "phm_rank")}
        return wrap_adapter(
            model, info,
            adapter_modules=sequential_modules(model, info, params["target_modules"],
                                               params["layers"]),
            adapter_dim=bottleneck(model, params["reduction_factor"], phm_dim),
            non_linearity=non_linearity, **fields,
        )

    return apply


def _parallel(model: Any, params: dict, info: ModelInfo) -> Any:
    return wrap_adapter(
        model, info,
        parallel_modules=ffn_blocks(model, info, params["target_modules"], params["layers"]),
        parallel_dim=bottleneck(model, params["reduction_factor"]),
        scaling=positive_number(params["scaling"], "scaling"),
        non_linearity="relu",
    )


_HOULSBY = ["self.o", "ffn_out"]
_PFEIFFER = ["ffn_out"]
_LR = (1e-4, 1e-2)

register_method(Method(
    name="houlsby",
    description="Houlsby adapters: bottlenecks after attention and after the FFN (own tuner)",
    params={"reduction_factor": 16, "target_modules": list(_HOULSBY), "layers": "all"},
    apply=_sequential("swish", phm=False), lr_range=_LR,
))
register_method(Method(
    name="pfeiffer",
    description="Pfeiffer adapter: one bottleneck after the FFN (own tuner)",
    params={"reduction_factor": 16, "target_modules": list(_PFEIFFER), "layers": "all"},
    apply=_sequential("relu", phm=False), lr_range=_LR,
))
register_method(Method(
    name="parallel",
    description="Parallel adapter: a scaled bottleneck beside the FFN (own tuner)",
    params={"reduction_factor": 2, "scaling": 4.0, "target_modules": ["ffn"], "layers": "all"},
    apply=_parallel, lr_range=_LR,
))
register_method(Method(
    name="compacter",
    description="Compacter: Houlsby placement with shared-rule PHM adapter weights (own tuner)",
    params={"reduction_factor": 32, "phm_dim": 4, "phm_rank": 1, "target_modules": list(_HOULSBY),
            "layers": "all"},
    apply=_sequential("gelu", phm=True), lr_range=_LR,
))
register_method(Method(
    name="compacter++",
    description="Compacter++: Pfeiffer placement with shared-rule PHM adapter weights (own tuner)",
    params={"reduction_factor": 32, "phm_dim": 4, "phm_rank": 1, "target_modules": list(_PFEIFFER),
            "layers": "all"},
    apply=_sequential("gelu", phm=True), lr_range=_LR,
))
