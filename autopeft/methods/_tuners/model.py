"""The adapter tuner: a peft ``BaseTuner`` that places the pieces an :class:`AdapterConfig` lists.

Structure follows peft's tuners (``_create_and_replace`` wraps one target module,
``_mark_only_adapters_as_trainable`` is peft's structural default: everything on a tuner layer
except its ``base_layer``, plus the tuner's own containers). State shared by many layers lives
on the tuner, once, keyed by adapter name:

* ``adapter_phm_rule`` — Compacter's shared rule matrices, one (n, n, n) tensor;
* ``adapter_prefix`` — one :class:`PrefixEncoder` per location (encoder / decoder / cross).

Layers reach them through plain references, so peft saves each tensor once, under
``base_model.adapter_phm_rule`` / ``base_model.adapter_prefix.<location>...``.

Nesting: a block (an FFN with a parallel adapter, an attention module with a prefix) may
contain other targets (its output projection with a sequential adapter, its q/v with LoRA).
peft visits parents before children and could not find a child by name once its parent is
wrapped, so the tuner reports only outermost targets to peft and wraps a block's targeted
descendants itself, innermost first, just before the block.
"""

from __future__ import annotations

import re

import torch
from peft.tuners.tuners_utils import BaseTuner
from torch import nn

from autopeft.methods._tuners.config import AdapterConfig
from autopeft.methods._tuners.layers import (
    AdapterTunerLayer,
    LoraLayer,
    ParallelAdapterLayer,
    SequentialAdapterLayer,
    module_device,
)
from autopeft.methods._tuners.modules import PrefixEncoder
from autopeft.methods._tuners.prefix import PrefixLayer, attention_dims

# Containers keyed by adapter name whose values are modules with several parameters: peft's
# default key mapping only strips an adapter name in the last two key positions.
_CONTAINERS = ("adapter_bottleneck", "adapter_lora", "adapter_prefix_gate", "adapter_prefix")
_CONTAINER_RE = re.compile(r"\.(" + "|".join(_CONTAINERS) + r")\.([^.]+)(?=\.)")


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


class AdapterModel(BaseTuner):
    """peft tuner for :class:`AdapterConfig` (bottleneck adapters, PHM, prefixes, gated LoRA)."""

    prefix: str = "adapter_"
    tuner_layer_cls = AdapterTunerLayer
    target_module_mapping: dict[str, list[str]] = {}

    def _prepare_adapter_config(self, peft_config: AdapterConfig, model_config: dict
                                ) -> AdapterConfig:
        return peft_config  # module lists are always explicit

    @staticmethod
    def _check_target_module_exists(peft_config: AdapterConfig, key: str) -> bool:
        roles = peft_config.roles()
        return key in roles and not any(a in roles for a in _ancestors(key))

    def _pre_injection_hook(self, model: nn.Module, config: AdapterConfig,
                            adapter_name: str) -> None:
        device = module_device(model)
        if "adapter_phm_rule" not in self._modules:
            self.adapter_phm_rule = nn.ParameterDict()
            self.adapter_prefix = nn.ModuleDict()
        if config.phm_dim:
            n = config.phm_dim
            self.adapter_phm_rule[adapter_name] = nn.Parameter(
                torch.randn(n, n, n, device=device) / n**0.5
            )
        if config.prefix_modules:
            encoders = nn.ModuleDict()
            for location, names in config.prefix_modules.items():
                hidden, heads, head_dim = attention_dims(model.get_submodule(names[0]),
                                                         model.config)
                encoders[location] = PrefixEncoder(
                    len(names), config.prefix_length, hidden, heads * head_dim,
                    config.prefix_mlp_width, device,
                )
            self.adapter_prefix[adapter_name] = encoders

    def _create_and_replace(self, peft_config: AdapterConfig, adapter_name: str,
                            target: nn.Module, target_name: str, parent: nn.Module,
                            current_key: str, **kwargs: object) -> None:
        roles = peft_config.roles()
        inner = sorted((n for n in roles if n.startswith(current_key + ".")),
                       key=lambda n: -n.count("."))
        for name in inner:
            rel = name[len(current_key) + 1:]
            sub_parent = target.get_submodule(rel.rpartition(".")[0])
            self._wrap(peft_config, adapter_name, roles[name], name,
                       sub_parent, rel.rpartition(".")[2])
        self._wrap(peft_config, adapter_name, roles[current_key], current_key, parent,
                   target_name)

    def _wrap(self, config: AdapterConfig, adapter_name: str, role: str, name: str,
              parent: nn.Module, child_name: str) -> None:
        target = getattr(parent, child_name)
        rule = self.adapter_phm_rule if config.phm_dim else None
        if isinstance(target, AdapterTunerLayer):  # a further adapter on a wrapped module
            if role == "prefix":
                target.update_layer(adapter_name, config, *self._site(config, adapter_name, name))
            elif role == "lora":
                target.update_layer(adapter_name, config)
            else:
                target.update_layer(adapter_name, config, rule)
            return
        if role == "adapter":
            new = SequentialAdapterLayer(target, adapter_name, config, rule)
        elif role == "parallel":
            cfg = self.model.config
            hidden = getattr(cfg, "d_model", None) or cfg.hidden_size
            new = ParallelAdapterLayer(target, adapter_name, config, rule, hidden)
        elif role == "lora":
            new = LoraLayer(target, adapter_name, config)
        else:
            new = PrefixLayer(target, adapter_name, config,
                              *self._site(config, adapter_name, name), self.model.config)
        if adapter_name not in self.active_adapters:
            new.requires_grad_(False)
        self._replace_module(parent, child_name, new, target)

    def _site(self, config: AdapterConfig, adapter_name: str, name: str
              ) -> tuple[PrefixEncoder, int]:
        for location, names in config.prefix_modules.items():
            if name in names:
                return self.adapter_prefix[adapter_name][location], names.index(name)
        raise KeyError(name)

    def set_adapter(self, adapter_name: str | list[str], inference_mode: bool = False) -> None:
        super().set_adapter(adapter_name, inference_mode=inference_mode)
        # The shared containers are not on any tuner layer: toggle them here.
        names = [adapter_name] if isinstance(adapter_name, str) else list(adapter_name)
        for container in (self.adapter_phm_rule, self.adapter_prefix):
            for key, value in container.items():
                value.requires_grad_(key in names and not inference_mode)

    @classmethod
    def _remove_adapter_name_from_key(cls, key: str, adapter_name: str) -> str:
        if f".{adapter_name}." in key:
            return _CONTAINER_RE.sub(
                lambda m: f".{m[1]}" if m[2] == adapter_name else m[0], key
            )
        return super()._remove_adapter_name_from_key(key, adapter_name)
