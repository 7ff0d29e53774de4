"""Where a method goes: module groups and layer specs resolved to exact module names.

Methods speak of architecture-neutral *groups* — ``q``, ``k``, ``v``, ``o`` (attention
projections), ``ffn_in`` and ``ffn_out`` (the feed-forward projections) — of *blocks* —
``attn`` (a whole attention module, where prefixes go) and ``ffn`` (a whole feed-forward block,
where parallel adapters go) — and of *layers*. This module turns them into the full names from
``model.named_modules()``, so that peft receives an exact list and never suffix-matches
something unintended (BERT's FFN output ``layer.N.output.dense`` versus the attention output
``layer.N.attention.output.dense``).

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
attn     ``SelfAttention``, ``EncDecAttention``     ``attention.self``
ffn      ``DenseReluDense``                         ``output`` (sees the FFN input as its
                                                    residual ``input_tensor``)
======== ======================================== ======================================

**Qualifiers** narrow a group or block (never a raw name): ``enc.`` / ``dec.`` pick the encoder
or decoder stack of a seq2seq model, and ``self.`` / ``cross.`` pick self- or cross-attention
for ``q, k, v, o, attn``, in that order: ``enc.q``, ``self.o``, ``dec.cross.attn``. A
qualified group that matches nothing (``dec.q`` on BERT) is an error that names it.

A name that is not a group is taken as a raw module name inside a layer (``"wi"``,
``"query"``, ``"SelfAttention.q"``): it matches Linear modules whose path inside the layer
equals it or ends with ``"." + name``.

**Layers** count per stack (the T5 encoder has ``num_layers``, the decoder
``num_decoder_layers``): ``"all"``, ``"upper_half"``, ``"lower_half"``, ``"A-B"`` (inclusive,
0-based), a list of indices, or a per-layer mask ``"mask:BITS"`` (AutoPEFT's layer
selection): bit ``i`` says whether layer ``i`` carries the method. The mask's length must equal
the stack depth, or divide it, in which case each bit covers ``depth / len`` consecutive layers
(``"mask:101"`` on 12 layers selects 0-3 and 8-11) — so one mask string fits models of several
depths and stays a model-independent categorical choice for the search. A seq2seq model
applies one mask to each stack, or ``"mask:ENC/DEC"`` gives one per stack. A mask that fits
no depth, or selects no layer of a stack, is an error that names it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from autopeft.errors import AutopeftError, excerpt
from autopeft.methods.base import ModelInfo

GROUPS = ("q", "k", "v", "o", "ffn_in", "ffn_out")
BLOCKS = ("attn", "ffn")
STACKS = {"enc": "encoder", "dec": "decoder"}
ATTENTION_KINDS = ("self", "cross")
LAYER_SPECS = (
    '"all", "upper_half", "lower_half", "A-B" (inclusive, 0-based), a list of ints or '
    '"mask:BITS" (one 0/1 per layer, or per equal group of layers)'
)

# A module inside a transformer layer: <prefix.>(encoder|decoder).(block|layer).<i>.<path>.
# This covers T5 (encoder.block.i) and the BERT family (bert.encoder.layer.i).
_LAYER_RE = re.compile(
    r"(?:^|\.)(?P<stack>encoder|decoder)\.(?:block|layer)\.(?P<idx>\d+)\.(?P<path>.+)$"
)
_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_MASK_RE = re.compile(r"^mask:([01]+)$")
_CROSS_RE = re.compile(r"(?:^|\.)(?:EncDecAttention|crossattention)(?:\.|$)")
_ATTENTION_GROUPS = ("q", "k", "v", "o", "attn")

_ATTN = r"layer\.\d+\.(?:SelfAttention|EncDecAttention)"
_GROUP_PATTERNS: dict[str, dict[str, re.Pattern[str]]] = {
    "t5": {
        "q": re.compile(_ATTN + r"\.q"),
        "k": re.compile(_ATTN + r"\.k"),
        "v": re.compile(_ATTN + r"\.v"),
        "o": re.compile(_ATTN + r"\.o"),
        "ffn_in": re.compile(r"layer\.\d+\.DenseReluDense\.wi(?:_0|_1)?"),
        "ffn_out": re.compile(r"layer\.\d+\.DenseReluDense\.wo"),
        "attn": re.compile(_ATTN),
        "ffn": re.compile(r"layer\.\d+\.DenseReluDense"),
    },
    "bert": {
        "q": re.compile(r"(?:cross)?attention\.self\.query"),
        "k": re.compile(r"(?:cross)?attention\.self\.key"),
        "v": re.compile(r"(?:cross)?attention\.self\.value"),
        "o": re.compile(r"(?:cross)?attention\.output\.dense"),
        "ffn_in": re.compile(r"intermediate\.dense"),
        # Matched against the whole path inside the layer, so attention.output.dense is excluded.
        "ffn_out": re.compile(r"output\.dense"),
        "attn": re.compile(r"(?:cross)?attention\.self"),
        # BertOutput: dense + dropout + LayerNorm(h + input_tensor), where input_tensor is the
        # FFN input (the attention output): the one module that sees both ends of the FFN.
        "ffn": re.compile(r"output"),
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


def parse_group(name: str) -> tuple[str | None, str | None, str] | None:
    """``(stack, attention kind, group)`` of a possibly qualified group, or None for raw names.

    ``"dec.cross.q"`` gives ``("decoder", "cross", "q")``; ``"ffn_out"`` gives
    ``(None, None, "ffn_out")``; ``"query"`` (not a group) gives None.

    Raises:
        AutopeftError: ``self.``/``cross.`` qualifies a group that is not an attention one.
    """
    parts = name.split(".")
    if parts[-1] not in GROUPS + BLOCKS:
        return None
    quals = parts[:-1]
    stack = STACKS[quals.pop(0)] if quals and quals[0] in STACKS else None
    kind = quals.pop(0) if quals and quals[0] in ATTENTION_KINDS else None
    if quals:
        return None  # e.g. "DenseReluDense.wo"-like raw paths that end in a group name
    if kind and parts[-1] not in _ATTENTION_GROUPS:
        raise AutopeftError(
            f"module group '{name}': '{kind}.' qualifies attention groups only "
            f"({', '.join(_ATTENTION_GROUPS)})"
        )
    return stack, kind, parts[-1]


def _mask_indices(spec: str, bits: str, n: int) -> list[int]:
    if n % len(bits):
        raise AutopeftError(
            f"layers '{spec}' has {len(bits)} bits, which does not fit a stack of {n} layers "
            f"(use {n} bits, or a number of bits that divides {n})"
        )
    per = n // len(bits)
    return [i for i in range(n) if bits[i // per] == "1"]


def layer_indices(spec: Any, n: int) -> list[int]:
    """The sorted layer indices that ``spec`` selects in a stack of ``n`` layers.

    Args:
        spec: ``"all"``, ``"upper_half"``, ``"lower_half"``, ``"A-B"`` (inclusive, 0-based),
            a list of ints, or ``"mask:BITS"`` (see the module docstring).
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
        elif m := _MASK_RE.match(spec):
            chosen = _mask_indices(spec, m.group(1), n)
        elif spec.startswith("mask:") and "/" in spec:
            raise AutopeftError(
                f"layers '{spec}' gives one mask per stack (encoder/decoder), but this model "
                "has a single stack; give one mask"
            )
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
        raise AutopeftError(f"layers {excerpt(spec)} is not understood; use {LAYER_SPECS}")
    if not chosen:
        raise AutopeftError(f"layers {excerpt(spec)} selects no layer of a stack of {n} layers")
    return chosen


def allowed_layers(info: ModelInfo, layers: Any) -> dict[str, set[int]]:
    """Per stack (``encoder``, ``decoder``), the layer indices that ``layers`` selects."""
    sizes = {"encoder": info.num_layers, "decoder": info.num_decoder_layers}
    specs = dict.fromkeys(sizes, layers)
    if isinstance(layers, str) and layers.startswith("mask:") and "/" in layers:
        parts = layers[len("mask:"):].split("/")
        if info.num_decoder_layers > 0:
            if len(parts) != 2:
                raise AutopeftError(
                    f"layers '{layers}' must be 'mask:ENC/DEC' (one mask per stack)"
                )
            specs = {"encoder": "mask:" + parts[0], "decoder": "mask:" + parts[1]}
    return {s: set(layer_indices(specs[s], n)) for s, n in sizes.items() if n > 0}


def _in_layer(name: str) -> tuple[str, int, str] | None:
    m = _LAYER_RE.search(name)
    return (m["stack"], int(m["idx"]), m["path"]) if m else None


def _attention_kind(path: str) -> str:
    return "cross" if _CROSS_RE.search(path) else "self"


def attention_location(name: str) -> str:
    """``encoder``, ``decoder`` or ``cross``: where an attention module (by full name) sits.

    Prefix tuning keeps one prefix encoder per location, as Li & Liang (2021) and AdapterHub do.
    """
    where = _in_layer(name)
    if where is None:
        raise AutopeftError(f"{name} is not a module inside a transformer layer")
    return "cross" if _attention_kind(where[2]) == "cross" else where[0]


def _resolve(model: Any, info: ModelInfo, groups: Any, layers: Any, blocks: bool) -> list[str]:
    import torch

    if isinstance(groups, str):
        groups = [groups]
    valid = BLOCKS if blocks else GROUPS
    if not groups:
        raise AutopeftError("no module group given; valid groups: " + ", ".join(valid))
    patterns = _GROUP_PATTERNS.get(family(info.model_type) or "", {})
    candidates = []
    for name, module in model.named_modules():
        if blocks or isinstance(module, torch.nn.Linear):
            where = _in_layer(name)
            if where:
                candidates.append((name, *where))

    selected: set[str] = set()
    for group in groups:
        parsed = parse_group(group)
        if parsed is not None and (parsed[2] in BLOCKS) != blocks:
            kind = "block" if parsed[2] in BLOCKS else "Linear group"
            raise AutopeftError(
                f"module group '{group}' is a {kind}, not usable here; valid groups: "
                f"{', '.join(valid)} (optionally qualified: enc., dec., self., cross.)"
            )
        if parsed is not None and parsed[2] in patterns:
            stack, kind, base = parsed
            hits = {
                n for n, s, _, path in candidates
                if patterns[base].fullmatch(path)
                and (stack is None or s == stack)
                and (kind is None or _attention_kind(path) == kind)
            }
        elif blocks:
            hits = set()
        else:
            hits = {n for n, _, _, p in candidates if p == group or p.endswith("." + group)}
        if not hits:
            raw = sorted({path.rsplit(".", 1)[-1] for _, _, _, path in candidates})
            known = ", ".join(g for g in valid if g in patterns) or (
                f"none known for {info.model_type}"
            )
            what = "module" if blocks else "Linear layer"
            extra = "" if blocks else f"; or a module name inside a layer: {', '.join(raw)}"
            raise AutopeftError(
                f"module group '{group}' matches no {what} of this {info.model_type} model; "
                f"valid groups: {known}{extra}"
            )
        selected |= hits

    allowed = allowed_layers(info, layers)
    chosen = [
        name
        for name, stack, idx, _ in candidates
        if name in selected and idx in allowed.get(stack, set())
    ]
    if not chosen:
        raise AutopeftError(
            f"layers {excerpt(layers)} leaves no module of groups {list(groups)} to target"
        )
    return chosen


def resolve_modules(
    model: Any, info: ModelInfo, groups: Sequence[str], layers: Any = "all"
) -> list[str]:
    """Full names of the ``nn.Linear`` modules that ``groups`` and ``layers`` select.

    Args:
        model: The (unwrapped) transformers model.
        info: ``ModelInfo.from_config(model.config)``.
        groups: Groups (:data:`GROUPS`, optionally qualified) or raw module names inside a layer.
        layers: Layer spec, resolved per stack (see :func:`layer_indices`).

    Returns:
        Names from ``model.named_modules()``, in model order, without duplicates.

    Raises:
        AutopeftError: A group matches no Linear module, or the layer spec is invalid or
            leaves nothing to target.
    """
    return _resolve(model, info, groups, layers, blocks=False)


def resolve_blocks(
    model: Any, info: ModelInfo, groups: Sequence[str], layers: Any = "all"
) -> list[str]:
    """Full names of the attention / FFN blocks (:data:`BLOCKS`, optionally qualified).

    Same contract as :func:`resolve_modules`, for ``attn`` and ``ffn`` instead of Linear groups.
    """
    return _resolve(model, info, groups, layers, blocks=True)


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
        allowed = allowed_layers(info, layers)
        norms = [n for n in norms if (w := _in_layer(n)) and w[1] in allowed.get(w[0], set())]
    if not norms:
        raise AutopeftError(
            f"layers {excerpt(layers)} leaves no LayerNorm of this {info.model_type} model"
        )
    return norms
