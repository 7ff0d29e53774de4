"""Loading models and tokenizers: a hub id or a local folder, offline-aware.

Encoder models (BERT, RoBERTa, MiniLM) get a sequence-classification head; encoder-decoder
models (T5 family) are trained text-to-text with verbalised labels, as the PEFT survey did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.hub import hub_reachable


@dataclass(frozen=True)
class ModelRef:
    """A resolved model reference.

    Attributes:
        name: What the user gave (hub id or path).
        path: The local folder, or the hub id when loaded from the hub/cache.
        config: The ``transformers`` config.
        is_seq2seq: Encoder-decoder (text-to-text) rather than encoder + classification head.
        has_weights: False for an architecture-only folder (config.json alone).
    """

    name: str
    path: str
    config: Any
    is_seq2seq: bool
    has_weights: bool


def _offline_error(name: str) -> AutopeftError:
    return AutopeftError(
        f"cannot load model '{name}': it is not a local folder and the Hugging Face hub is "
        "unreachable (offline?); pass a local folder instead, e.g. "
        "--model ../shared/models/all-MiniLM-L6-v2, or pre-fill the HF cache (HF_HOME)"
    )


def _from_pretrained(loader: Any, name: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` from a folder, the local cache, or the hub if reachable."""
    if Path(name).expanduser().is_dir():
        return loader.from_pretrained(str(Path(name).expanduser()), **kwargs)
    try:
        return loader.from_pretrained(name, local_files_only=True, **kwargs)
    except OSError:
        pass
    if not hub_reachable():
        raise _offline_error(name)
    try:
        return loader.from_pretrained(name, **kwargs)
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AutopeftError(f"cannot load model '{name}': {first}") from None


def resolve_model(name: str, *, trust_remote_code: bool = False) -> ModelRef:
    """Resolve ``name`` to a config without loading weights; errors are one line."""
    from transformers import AutoConfig

    p = Path(name).expanduser()
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_like_path and not p.exists():
        raise AutopeftError(f"model path '{name}' does not exist; give a folder or a hub id")
    if p.exists() and not p.is_dir():
        raise AutopeftError(f"model path '{name}' is a file; give the folder holding config.json")
    if p.is_dir() and not (p / "config.json").is_file():
        raise AutopeftError(f"model folder '{name}' has no config.json")
    try:
        config = _from_pretrained(AutoConfig, name, trust_remote_code=trust_remote_code)
    except ValueError as exc:  # e.g. custom code without --trust-remote-code
        raise AutopeftError(f"cannot load model '{name}': {str(exc).splitlines()[0]}") from None
    has_weights = True
    if p.is_dir():
        has_weights = any(p.glob("*.safetensors")) or any(p.glob("*.bin"))
    is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    path = str(p.resolve()) if p.is_dir() else name
    return ModelRef(name, path, config, is_seq2seq, has_weights)


def load_tokenizer(ref: ModelRef, *, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    try:
        return _from_pretrained(AutoTokenizer, ref.path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise AutopeftError(
            f"model '{ref.name}' has no usable tokenizer ({str(exc).splitlines()[0]}); "
            "give a folder that holds tokenizer files"
        ) from None


def load_model(ref: ModelRef, *, num_labels: int, trust_remote_code: bool = False) -> Any:
    """The trainable base model: seq2seq LM, or an encoder with a fresh classification head."""
    from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    if not ref.has_weights:
        raise AutopeftError(
            f"model folder '{ref.name}' holds a config only (no weights): it can be used by "
            "`autopeft estimate`, not for training"
        )
    if ref.is_seq2seq:
        return _from_pretrained(
            AutoModelForSeq2SeqLM, ref.path, trust_remote_code=trust_remote_code
        )
    kwargs: dict[str, Any] = {"num_labels": num_labels}
    if num_labels == 1:
        kwargs["problem_type"] = "regression"
    model = _from_pretrained(
        AutoModelForSequenceClassification, ref.path, trust_remote_code=trust_remote_code, **kwargs
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = getattr(model.config, "eos_token_id", None)
    return model


def build_meta_model(ref: ModelRef, *, num_labels: int, trust_remote_code: bool = False) -> Any:
    """The architecture on the ``meta`` device: no weights, no memory, no download."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    config = ref.config
    with torch.device("meta"):
        if ref.is_seq2seq:
            return AutoModelForSeq2SeqLM.from_config(config, trust_remote_code=trust_remote_code)
        config.num_labels = num_labels
        return AutoModelForSequenceClassification.from_config(
            config, trust_remote_code=trust_remote_code
        )
