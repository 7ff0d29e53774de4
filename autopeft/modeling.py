"""Loading models and tokenizers: a hub id or a local folder, offline-aware.

Encoder models (BERT, RoBERTa, MiniLM) get a sequence-classification head; encoder-decoder
models (T5 family) are trained text-to-text with verbalised labels, as the PEFT survey did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autopeft.errors import AutopeftError, excerpt
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
        raise AutopeftError(f"cannot load model '{name}': {_first_line(exc)}") from None


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
        raise AutopeftError(f"cannot load model '{name}': {_first_line(exc)}") from None
    except (OSError, KeyError, TypeError, AttributeError) as exc:
        if not p.is_dir():
            raise
        # a local config.json that is not JSON, or JSON that is not a config
        raise AutopeftError(f"model folder '{name}': cannot read config.json "
                            f"({_first_line(exc)}); restore it from the model's source") from None
    has_weights = True
    if p.is_dir():
        has_weights = any(p.glob("*.safetensors")) or any(p.glob("*.bin"))
    is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    path = str(p.resolve()) if p.is_dir() else name
    return ModelRef(name, path, config, is_seq2seq, has_weights)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return excerpt(text.splitlines()[0], 200, quote=False) if text else type(exc).__name__


# Common English words: a tokenizer that turns most of them into its unknown token has no
# vocabulary (transformers builds a 5-token BERT tokenizer from a folder without tokenizer
# files, and every word becomes [UNK]: trials then train on nothing and end at chance).
_PROBE = "the film was a good story about people who love their country and music"
_MAX_UNKNOWN = 0.5


def load_tokenizer(ref: ModelRef, *, trust_remote_code: bool = False) -> Any:
    """The model's tokenizer; AutopeftError (one line) when it is missing or has no vocabulary."""
    from transformers import AutoTokenizer

    try:
        tokenizer = _from_pretrained(AutoTokenizer, ref.path,
                                     trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AutopeftError(
            f"model '{ref.name}' has no usable tokenizer ({_first_line(exc)}); "
            "give a folder that holds tokenizer files"
        ) from None
    unk = getattr(tokenizer, "unk_token_id", None)
    ids = tokenizer(_PROBE, add_special_tokens=False)["input_ids"]
    unknown = sum(1 for i in ids if i == unk) if unk is not None else 0
    if not ids or unknown > _MAX_UNKNOWN * len(ids):
        raise AutopeftError(
            f"model '{ref.name}' has no usable tokenizer: its vocabulary has {len(tokenizer)} "
            f"tokens and {unknown} of {len(ids)} common English words become "
            f"{tokenizer.unk_token or 'unknown'}; give a folder that holds the model's "
            "tokenizer files (tokenizer.json, vocab.txt, spiece.model, ...)"
        )
    return tokenizer


def check_weights(ref: ModelRef) -> None:
    """Read the headers of a local model's weight files (cheap): a truncated or broken file is
    an AutopeftError here, not a failure of every trial after the search started.

    safetensors checks that its header describes tensors covering the whole file; a
    PyTorch ``.bin`` (a zip archive) must have its central directory, written last. Hub ids
    are checked when transformers downloads them.
    """
    folder = Path(ref.path)
    if not folder.is_dir() or not ref.has_weights:
        return
    files = sorted(folder.glob("*.safetensors"))
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        import json

        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AutopeftError(f"model folder '{ref.name}': cannot read {index.name} "
                                f"({_first_line(exc)})") from None
        missing = sorted(s for s in map(str, shards) if not (folder / s).is_file())
        if missing:
            raise AutopeftError(f"model folder '{ref.name}': weight shard {missing[0]} listed "
                                f"in {index.name} is missing")
    if files:
        from safetensors import SafetensorError, safe_open

        for path in files:
            try:
                with safe_open(str(path), framework="pt") as handle:
                    handle.keys()
            except (SafetensorError, OSError) as exc:
                raise AutopeftError(
                    f"model folder '{ref.name}': {path.name} is unreadable "
                    f"({_first_line(exc)}); is it truncated? download it again") from None
        return
    import zipfile

    for path in sorted(folder.glob("*.bin")):
        try:
            with path.open("rb") as handle:
                if handle.read(4) != b"PK\x03\x04":
                    continue  # the legacy (pre-1.6) pickle format: nothing cheap to check
            zipfile.ZipFile(path).close()
        except (zipfile.BadZipFile, OSError) as exc:
            raise AutopeftError(
                f"model folder '{ref.name}': {path.name} is unreadable ({_first_line(exc)}); "
                "is it truncated? download it again") from None


def max_positions(ref: ModelRef) -> int | None:
    """The longest input the model takes (its absolute position embeddings), or None when it
    has no such limit (T5's relative positions)."""
    positions = getattr(ref.config, "max_position_embeddings", None)
    if ref.is_seq2seq or not isinstance(positions, int) or isinstance(positions, bool):
        return None
    if ref.config.model_type in ("roberta", "xlm-roberta", "camembert"):
        positions -= 2  # their positions start after the padding index
    return positions


def config_ref(config: Any, name: str = "<config>") -> ModelRef:
    """A :class:`ModelRef` of an in-memory config (architecture only, no weights)."""
    return ModelRef(name, name, config, bool(getattr(config, "is_encoder_decoder", False)),
                    False)


def build_model(ref: ModelRef, *, num_labels: int, device: str = "cpu", pretrained: bool = True,
                trust_remote_code: bool = False) -> Any:
    """The model the trial runner trains, in train mode; the one place models are built.

    Encoder-decoder models are ``AutoModelForSeq2SeqLM`` (text-to-text); other models an
    ``AutoModelForSequenceClassification`` with a fresh ``num_labels`` head (regression for
    one label).

    Args:
        ref: The resolved model; its config is copied, never modified.
        num_labels: Size of an encoder's classification head.
        device: ``cpu`` (weights are loaded there; the caller moves the model), or ``meta``
            for an architecture without memory (counting, planning).
        pretrained: Load the model's weights (on ``meta`` nothing is loaded); False builds
            randomly initialised weights from the config alone.
        trust_remote_code: Allow model repositories with custom code.
    """
    import copy

    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    loader = AutoModelForSeq2SeqLM if ref.is_seq2seq else AutoModelForSequenceClassification
    head: dict[str, Any] = {}
    if not ref.is_seq2seq:
        head = {"num_labels": num_labels}
        if num_labels == 1:
            head["problem_type"] = "regression"
    if pretrained and device != "meta":
        if not ref.has_weights:
            raise AutopeftError(
                f"model folder '{ref.name}' holds a config only (no weights): it can be used "
                "by `autopeft estimate`, not for training"
            )
        model = _from_pretrained(loader, ref.path, trust_remote_code=trust_remote_code, **head)
    else:
        config = copy.deepcopy(ref.config)
        for key, value in head.items():
            setattr(config, key, value)
        with torch.device(device):
            model = loader.from_config(config, trust_remote_code=trust_remote_code)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = getattr(model.config, "eos_token_id", None)
    return model.train()


def hold_frozen_in(model: Any, dtype: str) -> Any:
    """Hold the frozen base in ``dtype`` and every trainable parameter in fp32; returns ``model``.

    The dtype policy of :mod:`autopeft.precision`: a 16-bit trial keeps its frozen weights in
    16 bits (half the memory of fp32, as PEFT users load a base model) while what is trained
    (parameters, hence their gradients and the optimizer state) stays fp32, so that small
    updates are not rounded away and ``GradScaler`` can unscale fp16 gradients. Called after
    the method is applied (it decides what is trainable), by the trial runner and by the
    memory predictor alike, on real or ``meta`` tensors. Parameters are converted in place
    (``param.data``), so tied weights stay tied; buffers are left as they are.

    Args:
        model: The model with its method applied.
        dtype: ``fp32``, ``bf16`` or ``fp16`` (:data:`autopeft.precision.DTYPES`).
    """
    import torch

    from autopeft.precision import torch_dtype

    frozen = torch_dtype(dtype)
    for param in model.parameters():
        if not param.is_floating_point():
            continue
        want = torch.float32 if param.requires_grad else frozen
        if param.dtype != want:
            param.data = param.data.to(want)
    return model
