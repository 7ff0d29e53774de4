"""BitFit as a peft tuner: a trainable bias delta on each module that has a bias.

Each targeted module (Linear, LayerNorm) is wrapped by :class:`BitFitLayer`, which adds a
zero-initialised ``bitfit_bias`` vector to the module's output. Since a bias is added last in
both, ``f(x) + delta`` equals ``f`` with its bias replaced by ``bias + delta``: the gradient of
``delta`` is the gradient of the bias, so this trains exactly what BitFit trains, while the
frozen base model stays untouched. Being a peft tuner, BitFit saves as ``adapter_config.json``
plus ``adapter_model.safetensors`` (only the deltas and the head) and loads with
``PeftModel.from_pretrained``; ``merge_and_unload`` folds the deltas into the biases.

One difference from flipping ``requires_grad`` on the biases: with AdamW weight decay the delta
decays towards the pretrained bias rather than towards zero (trials use no weight decay).
"""

from __future__ import annotations

from typing import Any

import torch
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer, check_adapters_to_merge
from torch import nn

from autopeft.methods._tuners.config import BitFitConfig


class BitFitLayer(nn.Module, BaseTunerLayer):
    """A module whose output gets a trainable per-feature bias delta."""

    adapter_layer_names = ("bitfit_bias",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: BitFitConfig) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.bitfit_bias = nn.ParameterDict()
        self._active_adapter = adapter_name
        self.merged_adapters = []
        self.update_layer(adapter_name, config)

    def update_layer(self, adapter_name: str, config: BitFitConfig) -> None:
        bias = self.get_base_layer().bias
        self.bitfit_bias[adapter_name] = nn.Parameter(torch.zeros_like(bias))
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        for name in check_adapters_to_merge(self, adapter_names):
            if name in self.bitfit_bias:
                self.get_base_layer().bias.data += self.bitfit_bias[name].data
                self.merged_adapters.append(name)

    def unmerge(self) -> None:
        while self.merged_adapters:
            name = self.merged_adapters.pop()
            self.get_base_layer().bias.data -= self.bitfit_bias[name].data

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.disable_adapters and self.merged:
            self.unmerge()
        out = self.base_layer(x, *args, **kwargs)
        if self.disable_adapters or self.merged:
            return out
        for name in self.active_adapters:
            if name in self.bitfit_bias:
                out = out + self.bitfit_bias[name].to(out.dtype)
        return out

    def __repr__(self) -> str:
        return "bitfit." + super().__repr__()


class BitFitModel(BaseTuner):
    """peft tuner for :class:`BitFitConfig`."""

    prefix: str = "bitfit_"
    tuner_layer_cls = BitFitLayer
    target_module_mapping: dict[str, list[str]] = {}

    def _prepare_adapter_config(self, peft_config: BitFitConfig, model_config: dict
                                ) -> BitFitConfig:
        return peft_config  # the module list is always explicit

    @staticmethod
    def _check_target_module_exists(peft_config: BitFitConfig, key: str) -> bool:
        # peft's matcher: with >= 20 targets peft rewrites the exact list into the minimal
        # set of name suffixes that match the same modules (MiniLM has 6 layers x 7+ biased
        # modules), so an exact-name test would then match nothing.
        from peft.tuners.tuners_utils import check_target_module_exists

        return bool(check_target_module_exists(peft_config, key))

    def _create_and_replace(self, peft_config: BitFitConfig, adapter_name: str,
                            target: nn.Module, target_name: str, parent: nn.Module,
                            current_key: str, **kwargs: object) -> None:
        if isinstance(target, BitFitLayer):
            target.update_layer(adapter_name, peft_config)
            return
        new = BitFitLayer(target, adapter_name, peft_config)
        if adapter_name not in self.active_adapters:
            new.requires_grad_(False)
        self._replace_module(parent, target_name, new, target)
