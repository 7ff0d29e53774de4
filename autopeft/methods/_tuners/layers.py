"""peft tuner layers of the adapter tuner: each wraps one module of the base model.

* :class:`SequentialAdapterLayer` wraps a Linear ``f``: ``h = f(x); h + adapter(h)``
  (Houlsby after the attention output and FFN output projections, Pfeiffer after the FFN's).
* :class:`ParallelAdapterLayer` wraps an FFN block: T5's ``DenseReluDense(x)`` becomes
  ``DenseReluDense(x) + adapter(x)``; BERT's ``BertOutput(h, x)`` (dense, dropout,
  ``LayerNorm(. + x)``, where ``x`` is the FFN input) is called with ``x + adapter(x)`` as its
  residual, which adds the adapter to the FFN output before the LayerNorm (He et al., 2022).
* :class:`LoraLayer` wraps a Linear: ``f(x) + lora(x)``.

The prefix layer, which wraps attention modules, is in :mod:`.prefix`. All of them derive from
:class:`AdapterTunerLayer`, the ``tuner_layer_cls`` of the tuner. Merging is not supported
(adapters with a non-linearity cannot be folded into the base weights).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from autopeft.methods._tuners.config import AdapterConfig
from autopeft.methods._tuners.modules import Bottleneck, LoRA


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter (``meta`` for models built on meta)."""
    return next(module.parameters()).device


class AdapterTunerLayer(nn.Module, BaseTunerLayer):
    """Common base: a ``base_layer`` plus per-adapter pieces in ``ModuleDict`` s."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self._active_adapter = "default"
        self.merged_adapters = []

    def _active(self, container: nn.ModuleDict) -> list[nn.Module]:
        if self.disable_adapters:
            return []
        return [container[a] for a in self.active_adapters if a in container]

    def __repr__(self) -> str:
        return "autopeft." + super().__repr__()


class SequentialAdapterLayer(AdapterTunerLayer):
    """A Linear followed by a bottleneck adapter with its own residual connection."""

    adapter_layer_names = ("adapter_bottleneck",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: AdapterConfig,
                 phm_rule: nn.ParameterDict | None) -> None:
        super().__init__(base_layer)
        self.adapter_bottleneck = nn.ModuleDict()
        self.update_layer(adapter_name, config, phm_rule)

    def update_layer(self, adapter_name: str, config: AdapterConfig,
                     phm_rule: nn.ParameterDict | None) -> None:
        features = self.get_base_layer().out_features
        phm = (config.phm_dim, config.phm_rank, phm_rule, adapter_name) if config.phm_dim else None
        self.adapter_bottleneck[adapter_name] = Bottleneck(
            features, config.adapter_dim, config.non_linearity, gated=config.gated, phm=phm,
            device=module_device(self.get_base_layer()),
        )
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        h = self.base_layer(x, *args, **kwargs)
        for adapter in self._active(self.adapter_bottleneck):
            h = h + adapter(h)
        return h


class ParallelAdapterLayer(AdapterTunerLayer):
    """An FFN block with a scaled bottleneck adapter beside it, reading the FFN input."""

    adapter_layer_names = ("adapter_bottleneck",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: AdapterConfig,
                 phm_rule: nn.ParameterDict | None, hidden_size: int) -> None:
        super().__init__(base_layer)
        # BERT-style output blocks take the FFN input as their residual ``input_tensor``.
        self.residual_arg = "input_tensor" in inspect.signature(base_layer.forward).parameters
        self.hidden_size = hidden_size
        self.adapter_bottleneck = nn.ModuleDict()
        self.update_layer(adapter_name, config, phm_rule)

    def update_layer(self, adapter_name: str, config: AdapterConfig,
                     phm_rule: nn.ParameterDict | None) -> None:
        phm = (config.phm_dim, config.phm_rank, phm_rule, adapter_name) if config.phm_dim else None
        self.adapter_bottleneck[adapter_name] = Bottleneck(
            self.hidden_size, config.parallel_dim, config.non_linearity, scaling=config.scaling,
            gated=config.gated, phm=phm, device=module_device(self.get_base_layer()),
        )
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def _delta(self, x: torch.Tensor) -> torch.Tensor | int:
        return sum((adapter(x) for adapter in self._active(self.adapter_bottleneck)), 0)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.residual_arg:
            # BertOutput(hidden_states, input_tensor): the residual is the FFN input.
            names = ("hidden_states", "input_tensor")
            bound = dict(zip(names, args, strict=False)) | kwargs
            x = bound["input_tensor"]
            bound["input_tensor"] = x + self._delta(x)
            return self.base_layer(**bound)
        x = args[0] if args else kwargs["hidden_states"]
        return self.base_layer(*args, **kwargs) + self._delta(x)


class LoraLayer(AdapterTunerLayer):
    """A Linear plus a (gated) low-rank update."""

    adapter_layer_names = ("adapter_lora",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: AdapterConfig) -> None:
        super().__init__(base_layer)
        self.adapter_lora = nn.ModuleDict()
        self.update_layer(adapter_name, config)

    def update_layer(self, adapter_name: str, config: AdapterConfig) -> None:
        base = self.get_base_layer()
        self.adapter_lora[adapter_name] = LoRA(
            base.in_features, base.out_features, config.lora_r, config.lora_alpha,
            config.lora_dropout, config.gated, module_device(base),
        )
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = self.base_layer(x, *args, **kwargs)
        for lora in self._active(self.adapter_lora):
            out = out + lora(x)
        return out
