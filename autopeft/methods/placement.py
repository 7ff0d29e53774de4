"""Where a method goes: module groups and layer ranges resolved to exact module names.

Methods speak of architecture-neutral *groups* — ``q``, ``k``, ``v``, ``o`` (attention
projections), ``ffn_in`` and ``ffn_out`` (the feed-forward projections) — and of *layers*
(``"all"``, ``"upper_half"``, ``"lower_half"``, ``"A-B"`` or a list of indices). This module
turns both into the full names from ``model.named_modules()`` of the modules to target, so that
peft receives an exact list and never suffix-matches something unintended (BERT's FFN output
``layer.N.output.dense`` versus the attention output ``layer.N.attention.output.dense``).

Per architecture family:

======== ======================================== ======================================
group    T5 (``t5``, ``mt5``, ``umt5``)            BERT family (bert, roberta, MiniLM, ...)
======== ======================================== ======================================
q        ``SelfAttention.q``, ``EncDecAttention.q`` ``attention.self.query``
k        ``SelfAttention.k``, ``EncDecAttention.k`` ``attention.self.key``
v        ``SelfAttention.v``, ``EncDecAttention.v`` ``attention.self.value``
o        ``SelfAttention.o``, ``EncDecAttention.o`` ``attention.output.dense``
ffn_in   ``DenseReluDense.wi`` (``wi_0``, ``wi_1``)  ``intermediate.dense``
ffn_out  ``DenseReluDense.wo``                      ``output.dense`` (the FFN one only)
======== ======================================== ======================================

A name that is not a group is taken as a raw module name inside a layer (``"wi"``,
``"query"``, ``"SelfAttention.q"``): it matches modules whose path inside the layer equals it
or ends with ``"." + name``. Layers count per stack: the T5 encoder has ``num_layers``, the
decoder ``num_decoder_layers``, so ``"upper_half"`` means the upper half of each stack.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.methods.base import ModelInfo

GROUPS = ("q", "k", "v", "o", "ffn_in", "ffn_out")
LAYER_SPECS = '"all", "upper_half", "lower_half", "A-B" (inclusive, 0-based) or a list of ints'

# A module inside a transformer layer: <prefix.>(encoder|decoder).(block|layer).<i>.<path>.
# This covers T5 (encoder.block.i) and the BERT family (bert.encoder.layer.i).
_LAYER_RE = re.compile(
    r"(?:^|\.)(?P<stack>encoder|decoder)\.(?:block|layer)\.(?P<idx>\d+)\.(?P<path>.+)$"
)
_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")

_ATTN = r"layer\.\d+\.(?:SelfAttention|EncDecAttention)\."
_GROUP_PATTERNS: dict[str, dict[str, re.Pattern[str]]] = {
    "t5": {
        "q": re.compile(_ATTN + "q"),
        "k": re.compile(_ATTN + "k"),
        "v": re.compile(_ATTN + "v"),
        "o": re.compile(_ATTN + "o"),
        "ffn_in": re.compile(r"layer\.\d+\.DenseReluDense\.wi(?:_0|_1)?"),
        "ffn_out": re.compile(r"layer\.\d+\.DenseReluDense\.wo"),
    },
    "bert": {
        "q": re.compile(r"attention\.self\.query"),
        "k": re.compile(r"attention\.self\.key"),
        "v": re.compile(r"attention\.self\.value"),
        "o": re.compile(r"attention\.output\.dense"),
        "ffn_in": re.compile(r"intermediate\.dense"),
        # Matched against the whole path inside the layer, so attention.output.dense is excluded.
        "ffn_out": re.compile(r"output\.dense"),
    },
}
_FAMILIES = {
    "t5": "t5",
    "mt5": "t5",
    "umt5": "t5",
    "bert": "bert",
    "roberta": "bert",
    "xlm-roberta": "bert",
    "camembert": "bert",
    "electra": "bert",
}


def family(model_type: str) -> str | None:
    """The architecture family (``t5`` or ``bert``) of a ``config.model_type``, or None."""
    return _FAMILIES.get(model_type)


def layer_indices(spec: Any, n: int) -> list[int]:
    """The sorted layer indices that ``spec`` selects in a stack of ``n`` layers.

    Args:
        spec: ``"all"``, ``"upper_half"``, ``"lower_half"``, ``"A-B"`` (inclusive, 0-based) or
            a list of ints.
        n: Number of layers in the stack.

    Raises:
        AutopeftError: The spec is malformed, out of range, or selects no layer.
    """
    if isinstance(spec, str):
        if spec == "all":
            chosen = list(range(n))
        elif spec == "upper_half":
            chosen = list(range(n // 2, n))
        elif spec == "lower_half":
            chosen = list(range(n // 2))
        elif m := _RANGE_RE.match(spec):
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi or hi >= n:
                raise AutopeftError(
                    f"layers '{spec}' is out of range for a stack of {n} layers (0-{n - 1})"
                )
            chosen = list(range(lo, hi + 1))
        else:
            raise AutopeftError(f"layers '{spec}' is not understood; use {LAYER_SPECS}")
    elif isinstance(spec, Sequence) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in spec
    ):
        bad = [i for i in spec if not 0 <= i < n]
        if bad:
            raise AutopeftError(
                f"layers {list(spec)} has indices {bad} out of range for a stack of {n} layers"
            )
        chosen = sorted(set(spec))
    else:
        raise AutopeftError(f"layers {spec!r} is not understood; use {LAYER_SPECS}")
    if not chosen:
        raise AutopeftError(f"layers {spec!r} selects no layer of a stack of {n} layers")
    return chosen


def _stack_sizes(info: ModelInfo) -> dict[str, int]:
    return {"encoder": info.num_layers, "decoder": info.num_decoder_layers}


def _in_layer(name: str) -> tuple[str, int, str] | None:
    m = _LAYER_RE.search(name)
    return (m["stack"], int(m["idx"]), m["path"]) if m else None


def _allowed(info: ModelInfo, layers: Any) -> dict[str, set[int]]:
    sizes = _stack_sizes(info)
    return {s: set(layer_indices(layers, n)) for s, n in sizes.items() if n > 0}


def resolve_modules(
    model: Any, info: ModelInfo, groups: Sequence[str], layers: Any = "all"
) -> list[str]:
    """Full names of the ``nn.Linear`` modules that ``groups`` and ``layers`` select.

    Args:
        model: The (unwrapped) transformers model.
        info: ``ModelInfo.from_config(model.config)``.
        groups: Group names (:data:`GROUPS`) or raw module names inside a layer.
        layers: Layer spec, resolved per stack (see :func:`layer_indices`).

    Returns:
        Names from ``model.named_modules()``, in model order, without duplicates.

    Raises:
        AutopeftError: A group matches no Linear module, or the layer spec is invalid or
            leaves nothing to target.
    """
    import torch

    if isinstance(groups, str):
        groups = [groups]
    if not groups:
        raise AutopeftError("no module group given; valid groups: " + ", ".join(GROUPS))
    patterns = _GROUP_PATTERNS.get(family(info.model_type) or "", {})
    linears = []
    for name, module in model.named_modules():
        where = _in_layer(name) if isinstance(module, torch.nn.Linear) else None
        if where:
            linears.append((name, *where))

    selected: set[str] = set()
    for group in groups:
        if group in patterns:
            hits = {n for n, _, _, path in linears if patterns[group].fullmatch(path)}
        else:
            hits = {n for n, _, _, path in linears if path == group or path.endswith("." + group)}
        if not hits:
            raw = sorted({path.rsplit(".", 1)[-1] for _, _, _, path in linears})
            valid = ", ".join(patterns) if patterns else f"none known for {info.model_type}"
            raise AutopeftError(
                f"module group '{group}' matches no Linear layer of this {info.model_type} "
                f"model; valid groups: {valid}; or a module name inside a layer: {', '.join(raw)}"
            )
        selected |= hits

    allowed = _allowed(info, layers)
    chosen = [
        name
        for name, stack, idx, _ in linears
        if name in selected and idx in allowed.get(stack, set())
    ]
    if not chosen:
        raise AutopeftError(
            f"layers {layers!r} leaves no module of groups {list(groups)} to target"
        )
    return chosen


def _is_norm(module: Any) -> bool:
    import torch

    # T5LayerNorm is an RMS norm that subclasses nn.Module, not nn.LayerNorm.
    name = type(module).__name__
    return isinstance(module, torch.nn.LayerNorm) or name.endswith(("LayerNorm", "RMSNorm"))


def resolve_norms(model: Any, info: ModelInfo, layers: Any = "all") -> list[str]:
    """Full names of the normalisation modules that ``layers`` selects (for LN tuning).

    ``"all"`` means every norm of the model, including those outside the layers (BERT's
    ``embeddings.LayerNorm``, T5's ``final_layer_norm``); any other spec selects only the norms
    inside the chosen layers of each stack.

    Raises:
        AutopeftError: The model has no norm module, or the layer spec is invalid.
    """
    norms = [name for name, module in model.named_modules() if name and _is_norm(module)]
    if layers != "all":
        allowed = _allowed(info, layers)
        norms = [n for n in norms if (w := _in_layer(n)) and w[1] in allowed.get(w[0], set())]
    if not norms:
        raise AutopeftError(
            f"layers {layers!r} leaves no LayerNorm of this {info.model_type} model"
        )
    return norms
