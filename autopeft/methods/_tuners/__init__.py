"""Custom peft tuners for the methods peft lacks (private; imports torch and peft).

:func:`register` adds our two peft types to peft's tables, once per process, so that
``get_peft_model``, ``save_pretrained`` and ``PeftModel.from_pretrained`` handle them like
peft's own methods:

* ``AUTOPEFT_ADAPTER`` — :class:`AdapterConfig` / :class:`AdapterModel`: sequential and
  parallel bottleneck adapters (dense or PHM), prefixes in attention and gated LoRA; the
  methods houlsby, pfeiffer, parallel, compacter, compacter++, mam, unipelt and autopeft;
* ``AUTOPEFT_BITFIT`` — :class:`BitFitConfig` / :class:`BitFitModel`.

Why not ``peft.utils.register_peft_method``: it requires the name to be a member of peft's
closed ``PeftType`` enum. It only fills three tables keyed by the type, which peft also reads
with plain-string types (peft#2634, #2635), so :func:`register` fills the same tables itself,
with the same duplicate checks.

Importing ``autopeft.methods`` never imports this package: method modules import it when a
method is applied, and :func:`autopeft.methods.saving.load_adapter` before loading.
"""

from __future__ import annotations

from autopeft.methods._tuners.bitfit import BitFitLayer, BitFitModel
from autopeft.methods._tuners.config import (
    ADAPTER_TYPE,
    BITFIT_TYPE,
    AdapterConfig,
    BitFitConfig,
)
from autopeft.methods._tuners.model import AdapterModel

__all__ = [
    "ADAPTER_TYPE",
    "BITFIT_TYPE",
    "AdapterConfig",
    "AdapterModel",
    "BitFitConfig",
    "BitFitLayer",
    "BitFitModel",
    "register",
]

_TYPES = (
    (ADAPTER_TYPE, AdapterConfig, AdapterModel),
    (BITFIT_TYPE, BitFitConfig, BitFitModel),
)


def register() -> None:
    """Make our peft types known to peft (idempotent)."""
    from peft.mapping import (
        PEFT_TYPE_TO_CONFIG_MAPPING,
        PEFT_TYPE_TO_PREFIX_MAPPING,
        PEFT_TYPE_TO_TUNER_MAPPING,
    )

    for peft_type, config_cls, model_cls in _TYPES:
        if PEFT_TYPE_TO_TUNER_MAPPING.get(peft_type) is model_cls:
            continue
        if peft_type in PEFT_TYPE_TO_TUNER_MAPPING:
            raise KeyError(f"peft already has a method called {peft_type}")
        if model_cls.prefix in PEFT_TYPE_TO_PREFIX_MAPPING.values():
            raise KeyError(f"peft already has a method with prefix {model_cls.prefix!r}")
        PEFT_TYPE_TO_PREFIX_MAPPING[peft_type] = model_cls.prefix
        PEFT_TYPE_TO_CONFIG_MAPPING[peft_type] = config_cls
        PEFT_TYPE_TO_TUNER_MAPPING[peft_type] = model_cls
