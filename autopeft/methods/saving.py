"""Save a trained method and load it back: peft's file layout for every method.

Every method except full fine-tuning is a peft adapter — peft's own (LoRA, LoKr, VeRA, IA3,
prompt/prefix tuning, LN tuning) or ours (bottleneck adapters, Compacter, MAM, UniPELT,
AutoPEFT configurations, BitFit; see :mod:`autopeft.methods._tuners`) — so
:func:`save_adapter` writes ``adapter_config.json`` + ``adapter_model.safetensors`` and
``PeftModel.from_pretrained`` loads them onto a fresh base model (a LoRA initialised by PiSSA
or OLoRA, which mutate the base weights, is converted to a plain LoRA of rank ``2r`` on the
way). Full fine-tuning has no
adapter: the whole model is saved with ``save_pretrained`` (``config.json`` +
``model.safetensors``) and loads with ``from_pretrained``.

Our peft types must be registered in the loading process before peft can read their config:
:func:`load_adapter` does it; with plain peft, call :func:`register_tuners` first::

    from autopeft.methods.saving import register_tuners
    register_tuners()
    model = PeftModel.from_pretrained(base_model, path)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.methods.lora import INIT_ATTR

ADAPTER_CONFIG = "adapter_config.json"
MODEL_CONFIG = "config.json"


def register_tuners() -> None:
    """Make autopeft's custom peft types loadable by ``PeftModel.from_pretrained``."""
    from autopeft.methods._tuners import register

    register()


def save_adapter(model: Any, method: str, path: str | Path) -> Path:
    """Save what ``method`` trained in ``model`` to the folder ``path``.

    Args:
        model: The model returned by ``get_method(method).build(...)`` (after training).
        method: The registry name of the method that built it.
        path: Target folder (created if missing).

    Returns:
        The folder.

    Raises:
        AutopeftError: ``model`` is not what ``method`` builds (a peft model for every method
            except ``full``).
    """
    from peft import PeftModel

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if method == "full":
        if isinstance(model, PeftModel):
            raise AutopeftError("method 'full' trains a plain model, got a peft model")
        model.save_pretrained(str(path))
        return path
    if not isinstance(model, PeftModel):
        raise AutopeftError(f"method '{method}' builds a peft model, got {type(model).__name__}")
    initial = getattr(model, INIT_ATTR, None)
    if initial is None:
        model.save_pretrained(str(path))
    else:
        _save_converted(model, initial, path)
    return path


def _save_converted(model: Any, initial: dict, path: Path) -> None:
    """Save a LoRA whose initialisation mutated the base weights (PiSSA, OLoRA) as a plain LoRA.

    peft's conversion (``path_initial_model_for_weight_conversion``) rewrites the adapter as
    ``[A | A0], [B | -B0]`` of rank ``2r``, which applies to the *original* weights. It keeps
    only the LoRA matrices, so the other saved tensors (an encoder's trained head, in
    ``modules_to_save``) are put back from the plain state dict.
    """
    import tempfile

    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    with tempfile.TemporaryDirectory() as tmp:
        init_dir = Path(tmp) / "initial"
        init_dir.mkdir()
        save_file({k: v.contiguous() for k, v in initial.items()},
                  str(init_dir / "adapter_model.safetensors"))
        # peft writes the initial adapter's config there itself (with init_lora_weights=True).
        model.save_pretrained(str(path), path_initial_model_for_weight_conversion=str(init_dir))
    weights = path / "adapter_model.safetensors"
    converted = load_file(str(weights))
    rest = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(model).items()
            if "lora_A" not in k and "lora_B" not in k and k not in converted}
    save_file({**converted, **rest}, str(weights), metadata={"format": "pt"})


def load_adapter(base_model: Any, path: str | Path, *, is_trainable: bool = False) -> Any:
    """Load a folder written by :func:`save_adapter` onto ``base_model``.

    Args:
        base_model: A fresh model of the architecture the method was trained on (the same
            weights it started from); for full fine-tuning only its class is used.
        path: The folder.
        is_trainable: Keep the adapter trainable (to continue training); default is frozen.

    Returns:
        A ``PeftModel``, or for full fine-tuning the model loaded from ``path``.

    Raises:
        AutopeftError: ``path`` holds neither an adapter nor a saved model.
    """
    path = Path(path)
    if (path / ADAPTER_CONFIG).is_file():
        from peft import PeftModel

        register_tuners()
        return PeftModel.from_pretrained(base_model, str(path), is_trainable=is_trainable)
    if (path / MODEL_CONFIG).is_file():
        model = type(base_model).from_pretrained(str(path))
        return model.train() if is_trainable else model.eval()
    raise AutopeftError(
        f"{path} holds no saved method: expected {ADAPTER_CONFIG} (an adapter) or "
        f"{MODEL_CONFIG} (a fully fine-tuned model)"
    )
