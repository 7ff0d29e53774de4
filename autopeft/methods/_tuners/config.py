"""peft configs of our custom tuners: the composite adapter tuner and BitFit.

Both are plain :class:`peft.PeftConfig` dataclasses, so ``save_pretrained`` writes them as
``adapter_config.json`` and ``PeftConfig.from_pretrained`` reads them back. Every module list
holds exact names from ``model.named_modules()`` (resolved by
:mod:`autopeft.methods.placement`), never patterns: the saved file says exactly where each
piece sits.

``peft_type`` is a plain string (``AUTOPEFT_ADAPTER``, ``AUTOPEFT_BITFIT``): peft's
``PeftType`` is a closed enum, and peft accepts string types for methods registered outside
it (peft#2634, #2635). :func:`autopeft.methods._tuners.register` adds them to peft's tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peft.config import PeftConfig

ADAPTER_TYPE = "AUTOPEFT_ADAPTER"
BITFIT_TYPE = "AUTOPEFT_BITFIT"
NON_LINEARITIES = ("relu", "gelu", "swish", "tanh")


@dataclass
class AdapterConfig(PeftConfig):
    """Bottleneck adapters (dense or PHM), prefixes and LoRA, optionally gated, in one tuner.

    One config describes every method peft lacks: Houlsby / Pfeiffer (sequential adapters),
    parallel adapters, Compacter (PHM weights), MAM (prefix + parallel adapter), UniPELT (gated
    LoRA + prefix + adapter) and AutoPEFT's configurations. A single peft tuner holding all the
    pieces is what lets the combined methods live in one ``PeftModel`` (peft allows one adapter
    type per model).

    Attributes:
        target_modules: Every wrapped module (informative; the lists below are authoritative).
        adapter_modules: Linear modules followed by a sequential bottleneck adapter
            ``h + up(act(down(h)))`` on their output ``h``.
        adapter_dim: Bottleneck width of the sequential adapters.
        parallel_modules: FFN blocks beside which a parallel adapter adds
            ``scaling * up(act(down(x)))`` computed from the FFN input ``x``.
        parallel_dim: Bottleneck width of the parallel adapters.
        scaling: Output scale of the parallel adapters.
        non_linearity: Adapter activation, one of :data:`NON_LINEARITIES`.
        phm_dim: 0 for dense adapter weights; ``n > 0`` for PHM weights (Compacter):
            ``W = sum_i A_i (x) B_i`` with ``n`` rule matrices ``A_i`` (n x n) shared by every
            adapter layer and per-layer ``B_i`` factored as ``s_i t_i`` of rank ``phm_rank``.
        phm_rank: Rank of the ``B_i`` factors.
        prefix_modules: Attention modules that receive trainable key/value prefixes, grouped by
            location (``encoder``, ``decoder``, ``cross``); one prefix encoder per location.
        prefix_length: Number of prefix positions.
        prefix_mlp_width: 0 for a flat prefix; otherwise the width of the reparameterising MLP
            (Li & Liang, 2021) shared by all attention modules of a location.
        lora_modules: Linear modules that receive a LoRA update.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator (the update is scaled by ``lora_alpha / lora_r``).
        lora_dropout: Dropout on the LoRA input.
        gated: UniPELT gating: each piece is scaled by ``mean_seq(sigmoid(W_g x))`` computed
            from its input (keys and values of a prefix get one gate each).
        modules_to_save: Extra modules trained and saved in full (peft fills in a
            classification head for ``SEQ_CLS``).
    """

    target_modules: list[str] | None = None
    adapter_modules: list[str] = field(default_factory=list)
    adapter_dim: int = 0
    parallel_modules: list[str] = field(default_factory=list)
    parallel_dim: int = 0
    scaling: float = 1.0
    non_linearity: str = "relu"
    phm_dim: int = 0
    phm_rank: int = 1
    prefix_modules: dict[str, list[str]] = field(default_factory=dict)
    prefix_length: int = 0
    prefix_mlp_width: int = 0
    lora_modules: list[str] = field(default_factory=list)
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    gated: bool = False
    modules_to_save: list[str] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = ADAPTER_TYPE
        if self.non_linearity not in NON_LINEARITIES:
            raise ValueError(
                f"non_linearity must be one of {', '.join(NON_LINEARITIES)}, "
                f"got {self.non_linearity!r}"
            )
        prefix = [n for names in self.prefix_modules.values() for n in names]
        parts = {
            "adapter_modules": (self.adapter_modules, self.adapter_dim),
            "parallel_modules": (self.parallel_modules, self.parallel_dim),
            "prefix_modules": (prefix, self.prefix_length),
            "lora_modules": (self.lora_modules, self.lora_r),
        }
        for name, (modules, size) in parts.items():
            if modules and size < 1:
                raise ValueError(f"{name} is set, so its size must be a positive integer")
        if not any(modules for modules, _ in parts.values()):
            raise ValueError("the config places no adapter, prefix or LoRA module")
        seen: dict[str, str] = {}
        for name, (modules, _) in parts.items():
            for module in modules:
                if module in seen:
                    raise ValueError(
                        f"module {module} is in both {seen[module]} and {name}; one module "
                        "carries one piece"
                    )
                seen[module] = name
        if self.target_modules is None:
            self.target_modules = sorted(seen)

    def roles(self) -> dict[str, str]:
        """Module name -> ``adapter``, ``parallel``, ``prefix`` or ``lora``."""
        out = {n: "adapter" for n in self.adapter_modules}
        out |= {n: "parallel" for n in self.parallel_modules}
        out |= {n: "prefix" for names in self.prefix_modules.values() for n in names}
        out |= {n: "lora" for n in self.lora_modules}
        return out


@dataclass
class BitFitConfig(PeftConfig):
    """BitFit (Ben Zaken et al., 2022): a trainable bias delta on each listed module.

    Attributes:
        target_modules: Modules with a bias (Linear, LayerNorm) whose bias trains.
        modules_to_save: Extra modules trained and saved in full (an encoder's head).
    """

    target_modules: list[str] | None = None
    modules_to_save: list[str] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = BITFIT_TYPE
        if not self.target_modules:
            raise ValueError("BitFit needs the list of modules whose bias trains")
