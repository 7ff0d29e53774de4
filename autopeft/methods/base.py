"""The method registry: one dict maps a lowercase name to a :class:`Method`.

A method is a small module (``autopeft/methods/<name>.py``) that builds a :class:`Method`
and calls :func:`register_method` once at import time. Method modules must not import torch,
transformers or peft at module level: ``import autopeft`` and ``autopeft --help`` stay light.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autopeft.errors import AutopeftError, MethodNotApplicable

_NAME_RE = re.compile(r"^[a-z][a-z0-9_+]*$")


@dataclass(frozen=True)
class ModelInfo:
    """What a method needs to know about the model it is applied to.

    Attributes:
        model_type: ``config.model_type`` (``t5``, ``bert``, ``roberta``, ...).
        is_seq2seq: True for encoder-decoder models trained text-to-text (T5 family).
        num_layers: Number of encoder layers (all layers for encoder-only models).
        num_decoder_layers: Number of decoder layers (0 for encoder-only models).
    """

    model_type: str
    is_seq2seq: bool
    num_layers: int
    num_decoder_layers: int = 0

    @classmethod
    def from_config(cls, config: Any) -> ModelInfo:
        is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
        num_layers = getattr(config, "num_layers", None) or config.num_hidden_layers
        num_dec = getattr(config, "num_decoder_layers", None) or (num_layers if is_seq2seq else 0)
        return cls(config.model_type, is_seq2seq, int(num_layers), int(num_dec))


@dataclass(frozen=True)
class Method:
    """A PEFT method as the search sees it.

    Attributes:
        name: Lowercase registry name (``lora``, ``ia3``, ...).
        description: One line for ``--help`` and listings.
        params: Every hyper-parameter the search may set, with its default. Names follow peft
            where peft has the method (``r``, ``lora_alpha``, ``target_modules``, ...).
        apply: ``apply(model, params, info) -> model``: returns the model ready to train, with
            ``requires_grad`` set; ``params`` is already completed with defaults.
        check: ``check(model, info) -> reason | None``: why the method cannot apply to this
            model (e.g. no bias terms), or None when it can.
        lr_range: Learning-rate range (low, high) that suits the method, for default spaces.
    """

    name: str
    description: str
    params: Mapping[str, Any]
    apply: Callable[[Any, dict, ModelInfo], Any]
    check: Callable[[Any, ModelInfo], str | None] = field(default=lambda model, info: None)
    lr_range: tuple[float, float] = (1e-4, 1e-2)

    def resolve_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``params``; an unknown name is an error that names it."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise AutopeftError(
                f"method '{self.name}' has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters are: {known}"
            )
        return {**self.params, **params}

    def build(self, model: Any, params: Mapping[str, Any] | None, info: ModelInfo) -> Any:
        """Check applicability, then apply with resolved params."""
        reason = self.check(model, info)
        if reason:
            raise MethodNotApplicable(f"method '{self.name}' does not apply: {reason}")
        return self.apply(model, self.resolve_params(params), info)


_REGISTRY: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add a method to the registry; duplicates and non-lowercase names are rejected."""
    if not _NAME_RE.match(method.name):
        raise ValueError(f"method name {method.name!r} must be lowercase [a-z0-9_+]")
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is already registered")
    _REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method called ``name``; an unknown name lists the known ones.

    The built-ins are registered by then: importing this module runs the package's
    ``__init__`` first, which imports every method module.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise AutopeftError(
            f"unknown method '{name}'; known methods: {', '.join(sorted(_REGISTRY))}"
        ) from None


def list_methods() -> list[Method]:
    """All registered methods, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def effective_params(method: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a trial of ``method`` ran with: the method's defaults overlaid with ``params``.

    Stored rows keep only the sampled parameters (``{}`` for a method run at its defaults),
    so reports and model cards show this instead. A method that is not registered here, or
    a name it does not know (a row written by another autopeft version), gives ``params``
    unchanged rather than an error: a report never fails on an old row.
    """
    params = dict(params or {})
    known = _REGISTRY.get(method)
    if known is None or set(params) - set(known.params):
        return params
    return known.resolve_params(params)

