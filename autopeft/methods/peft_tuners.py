"""Every other peft tuner type that fits our models, from one table (:data:`TUNERS`).

peft 0.21 ships some 45 tuner types. The ones that apply to an encoder classifier (BERT
family) and to T5 trained text-to-text, and train by plain backprop on the task loss, are
registered here without a module each: peft's config class (looked up by its ``PeftType`` in
``peft.mapping.PEFT_TYPE_TO_CONFIG_MAPPING``) already knows every field, its default and its
validation, and peft counts, saves and loads the result. The table only says what peft cannot
tell us:

* ``params``: the peft fields the search may set, with defaults that fit every model we run
  (block sizes that divide 32, 384, 512, 768 and 1024, ranks below the narrowest width). The
  other fields keep peft's defaults. Values are checked against the type of peft's default
  (an int stays an int, a ``*_dropout`` is a probability) before peft checks them itself.
* ``target_modules`` / ``layers``: our module groups and layer specs, resolved to exact names
  by :func:`~autopeft.methods.placement.resolve_modules` (never peft's per-model defaults,
  which do not know MiniLM).
* ``fixed``: peft fields set for every trial, each with its reason in a comment.
* ``lr_range``: what suits the method, from its paper or peft's examples.

What peft has but we leave out, and why (read from peft's code, not guessed), is
:data:`EXCLUDED`; together with the method modules (:data:`OWN_MODULES`) it must cover every
``PeftType`` (a test checks it), so a peft upgrade that adds a type fails a test instead of
being silently ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method
from autopeft.methods.placement import resolve_modules


@dataclass(frozen=True)
class Tuner:
    """One row of the table: a peft tuner type as a registry method.

    Attributes:
        name: Registry name.
        peft_type: peft's ``PeftType`` value (key of ``PEFT_TYPE_TO_CONFIG_MAPPING``).
        description: One line for listings.
        params: Searchable peft fields and their defaults; ``target_modules`` and ``layers``
            (our placement) are added for every tuner that targets Linear modules.
        lr_range: Learning-rate range for default spaces.
        fixed: peft fields set for every trial (not searchable).
        prompt: A prompt-learning type: no target modules, prompts go to the encoder.
    """

    name: str
    peft_type: str
    description: str
    params: dict[str, Any]
    lr_range: tuple[float, float] = (1e-4, 1e-2)
    fixed: dict[str, Any] = field(default_factory=dict)
    prompt: bool = False


TUNERS: tuple[Tuner, ...] = (
    Tuner("loha", "LOHA", "LoHa: Hadamard product of two low-rank updates",
          {"r": 8, "alpha": 8, "rank_dropout": 0.0, "module_dropout": 0.0}),
    Tuner("oft", "OFT", "OFT: block-diagonal orthogonal rotation of each weight",
          {"oft_block_size": 32, "module_dropout": 0.0, "coft": False}),
    Tuner("boft", "BOFT", "BOFT: butterfly-factored orthogonal rotation of each weight",
          {"boft_block_size": 4, "boft_n_butterfly_factor": 1, "boft_dropout": 0.0}),
    # apply_GS stays off: peft's identity init pairs equal reflection vectors, which
    # Gram-Schmidt turns into 0 / 0 (NaN loss from the first step; seen on tiny BERT).
    Tuner("hra", "HRA", "HRA: chain of Householder reflections applied to each weight",
          {"r": 8}),
    Tuner("c3a", "C3A", "C3A: block-circulant convolution update",
          {"block_size": 32}, lr_range=(1e-3, 1e-1)),
    # FourierFT/WaveFT train a few spectral coefficients: the papers use LRs around 1e-1.
    Tuner("fourierft", "FOURIERFT", "FourierFT: trainable sparse Fourier coefficients",
          {"n_frequency": 1000, "scaling": 150.0}, lr_range=(1e-3, 1e-1)),
    Tuner("waveft", "WAVEFT", "WaveFT: trainable sparse wavelet coefficients",
          {"n_frequency": 1000, "scaling": 25.0}, lr_range=(1e-3, 1e-1)),
    Tuner("vblora", "VBLORA", "VB-LoRA: low-rank updates composed from a shared vector bank",
          # vector_length must divide every targeted width: 32 divides all our models'.
          {"r": 4, "num_vectors": 256, "vector_length": 32, "topk": 2, "vblora_dropout": 0.0},
          lr_range=(1e-3, 5e-2)),
    Tuner("miss", "MISS", "MiSS: one shared trainable shard per weight",
          {"r": 16, "miss_dropout": 0.0}),
    Tuner("randlora", "RANDLORA", "RandLoRA: full-rank update from frozen random low-rank bases",
          {"r": 32, "randlora_alpha": 640, "randlora_dropout": 0.0},
          fixed={"save_projection": True}),
    Tuner("shira", "SHIRA", "SHiRA: sparse high-rank adapter (a trainable random mask)",
          # A fixed seed makes the mask reproducible; it is saved with the adapter anyway.
          {"r": 8}, fixed={"random_seed": 0}),
    Tuner("delora", "DELORA", "DeLoRA: low-rank update with a bounded, decoupled norm",
          {"r": 8, "delora_lambda": 15, "module_dropout": 0.0}),
    Tuner("gralora", "GRALORA", "GraLoRA: granular (block-wise) low-rank updates",
          {"r": 32, "alpha": 64, "gralora_k": 2, "gralora_dropout": 0.0}),
    Tuner("tinylora", "TINYLORA", "TinyLoRA: a tiny trained vector through frozen projections",
          {"r": 2, "u": 64, "tinylora_dropout": 0.0}, lr_range=(1e-3, 5e-2),
          fixed={"save_projection": True}),
    Tuner("road", "ROAD", "RoAd: learned 2D rotations of output-feature pairs",
          {"variant": "road_1", "group_size": 32}, lr_range=(1e-3, 3e-2)),
    Tuner("deft", "DEFT", "DeFT: low-rank update with a learned decomposition",
          {"r": 8, "deft_dropout": 0.0}),
    Tuner("glora", "GLORA", "GLoRA: generalised LoRA (weight, activation and bias prompts)",
          {"r": 8}),
    Tuner("hira", "HIRA", "HiRA: Hadamard high-rank update (W * BA)",
          {"r": 32, "hira_dropout": 0.0}),
    Tuner("lily", "LILY", "Lily: low-rank projectors shared across layers",
          {"r": 32, "num_B": 2, "scaling": 1.0}),
    Tuner("peanut", "PEANUT", "PEANuT: small non-linear adapter network on each weight",
          {"r": 32, "depth": 0, "scaling": 1.0}),
    Tuner("psoft", "PSOFT", "PSOFT: orthogonal tuning in the weight's principal subspace",
          {"r": 32, "psoft_alpha": 32, "psoft_dropout": 0.0}),
    Tuner("pvera", "PVERA", "PVeRA: probabilistic VeRA (shared random projections, scales)",
          {"r": 256, "pvera_dropout": 0.0}, lr_range=(1e-3, 5e-2),
          fixed={"save_projection": True}),
    Tuner("unilora", "UNILORA", "Uni-LoRA: every update drawn from one shared trained vector",
          {"r": 4, "theta_d_length": 256, "unilora_dropout": 0.0}, lr_range=(1e-3, 5e-2)),
    # ASA (use_asa) prunes subspaces in update_and_allocate after every step: not plain
    # backprop, so it stays off (the runner's loop does not call it).
    Tuner("adamss", "ADAMSS", "AdaMSS: trainable subspaces of the weight's SVD (ASA off)",
          {"r": 32, "num_subspaces": 5, "subspace_rank": 1}, fixed={"use_asa": False}),
    Tuner("beft", "BEFT", "BEFT: trainable bias terms added to chosen projections", {},
          lr_range=(1e-4, 3e-2)),
    Tuner("frod", "FROD", "FRoD: sparse trained factors of a shared rotation basis",
          {"sparse_rate": 0.01, "frod_dropout": 0.0}, lr_range=(1e-3, 5e-2),
          # The progress bar would clutter every trial's log.
          fixed={"save_projection": True, "progressbar": False}),
    Tuner("osf", "OSF", "OSF: trains the low-singular-value subspace of each weight",
          # A fraction of min(in, out): the trained rank is the rest of the spectrum.
          {"effective_rank": 0.9}, lr_range=(1e-5, 1e-3)),
    Tuner("supertuning", "SUPERTUNING", "SuperTuning: sparse trainable weight entries (largest)",
          {"sparsity": 0.99}, lr_range=(1e-5, 1e-3)),
    # peft allocates 2 * num_virtual_tokens prompts for seq2seq and uses half: as for prompt
    # tuning, one submodule keeps every trainable parameter in use.
    Tuner("p_tuning", "P_TUNING", "P-tuning: soft prompts produced by a trained MLP encoder",
          {"num_virtual_tokens": 20, "encoder_hidden_size": 128}, lr_range=(1e-3, 1e-1),
          fixed={"num_transformer_submodules": 1}, prompt=True),
)

# Tuner types with a module of their own (autopeft/methods/<name>.py).
OWN_MODULES = {
    "LORA": "lora", "LOKR": "lokr", "VERA": "vera", "IA3": "ia3", "LN_TUNING": "ln_tuning",
    "PROMPT_TUNING": "prompt_tuning", "PREFIX_TUNING": "prefix_tuning",
}

# What peft has and we do not register, and why (README shows this table).
EXCLUDED = {
    "ADALORA": "needs update_and_allocate(step) after every backward pass (rank budget "
               "schedule) and total_step up front; the trial loop has no such hook",
    "XLORA": "a learned mixture over LoRA adapters that must be trained first (adapters= "
             "paths); it also requires decoder use_cache=False",
    "POLY": "routes through task_ids given to every forward (multi-task); our batches carry "
            "no task id",
    "MULTITASK_PROMPT_TUNING": "needs source-task prompt training, then task_ids per batch",
    "CPT": "causal LMs only (peft raises for other task types); needs a token-type mask",
    "ADAPTION_PROMPT": "decoder-only (llama-style) attention only; peft rejects bert and t5",
    "CARTRIDGE": "a trained KV-cache prefix served as past_key_values, which BERT-family "
                 "models in transformers 5 no longer take; on T5 it runs, but as flat prefixes "
                 "in decoder self-attention only (less than our prefix_tuning) minus a frozen "
                 "first token, while its own training is distillation from a "
                 "corpus-initialised cache",
    "SHADOW": "a shadow network riding a decoder-only model's layer loop with an auxiliary "
              "loss; its forward fails on bert and t5",
    "TRAINABLE_TOKENS": "trains embedding rows of given token ids, meant for newly added "
                        "tokens; our tasks add none, and it leaves an encoder's head frozen",
}


def _check_value(method: str, name: str, value: Any, default: Any, annotation: str) -> Any:
    """``value`` checked against peft's default (or, when that is None, its type annotation)."""
    where = f"method '{method}' parameter {name}"
    if name.endswith("_dropout"):
        return _peft.probability(value, f"{where}")
    if isinstance(default, bool):
        return _peft.boolean(value, where)
    if default is None and "int" in annotation and "float" not in annotation:
        default = 1
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < min(default, 1):
            low = min(default, 1)
            raise AutopeftError(f"{where} must be an integer >= {low}, got {value!r}")
        return value
    if isinstance(default, float) or default is None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise AutopeftError(f"{where} must be a number > 0, got {value!r}")
        return value
    if isinstance(default, str) and not isinstance(value, str):
        raise AutopeftError(f"{where} must be a string like {default!r}, got {value!r}")
    return value


def config_class(peft_type: str) -> Any:
    """peft's config class for a ``PeftType`` value."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    return PEFT_TYPE_TO_CONFIG_MAPPING[peft_type]


def _defaults(cls: Any) -> dict[str, tuple[Any, str]]:
    """peft's ``(default, type annotation)`` of every field of a config class."""
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        out[f.name] = (default, str(f.type))
    return out


def _make_apply(tuner: Tuner) -> Any:
    def apply(model: Any, params: dict, info: ModelInfo) -> Any:
        cls = config_class(tuner.peft_type)
        defaults = _defaults(cls)
        kwargs = {k: _check_value(tuner.name, k, params[k], *defaults[k]) for k in tuner.params}
        if not tuner.prompt:
            groups = _peft.as_names(params["target_modules"], "target_modules")
            kwargs["target_modules"] = resolve_modules(model, info, groups, params["layers"])
        try:
            config = cls(task_type=_peft.task_type(info), **tuner.fixed, **kwargs)
            return _peft.wrap(model, config, info)
        except (ValueError, TypeError) as exc:
            # peft's own checks (a block size that does not divide a width, ...): one line
            # that names the method and what was asked, plus peft's reason.
            asked = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "target_modules")
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise AutopeftError(
                f"method '{tuner.name}' ({asked}) does not fit this {info.model_type} model: "
                f"{reason}; change that parameter"
            ) from exc

    return apply


def _register(tuner: Tuner) -> Method:
    params = dict(tuner.params)
    if not tuner.prompt:
        params |= {"target_modules": ["q", "v"], "layers": "all"}
    return register_method(
        Method(
            name=tuner.name,
            description=f"{tuner.description} (peft {tuner.peft_type})",
            params=params,
            apply=_make_apply(tuner),
            lr_range=tuner.lr_range,
        )
    )


METHODS = tuple(_register(t) for t in TUNERS)
