"""Helpers shared by the method modules: peft task types, wrapping, heads, param checks.

peft, torch and transformers are imported inside the functions, so method modules may import
this module at their top and ``import autopeft.methods`` stays light.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.methods.base import ModelInfo

# The module names peft's PeftModelForSequenceClassification puts in modules_to_save; BitFit
# and the head check use the same names so that every method trains the same head.
HEAD_NAMES = ("classifier", "score")


def task_type(info: ModelInfo) -> str:
    """peft's task type for the models the trial runner builds.

    ``SEQ_CLS`` makes peft train the fresh classification head of an encoder (through
    ``modules_to_save``); ``SEQ_2_SEQ_LM`` is T5 trained text-to-text, which has no new head.
    """
    return "SEQ_2_SEQ_LM" if info.is_seq2seq else "SEQ_CLS"


def head_parameters(model: Any) -> list[tuple[str, Any]]:
    """(name, parameter) pairs of the classification head (empty for seq2seq models)."""
    return [
        (name, p)
        for name, p in model.named_parameters()
        if any(part in HEAD_NAMES for part in name.split("."))
    ]


def wrap(model: Any, config: Any, info: ModelInfo) -> Any:
    """``peft.get_peft_model`` plus a check that an encoder's head is trainable.

    A classification head left frozen keeps training at chance whatever the method does, so
    this fails loudly instead of letting a search waste its budget.
    """
    from peft import get_peft_model

    peft_model = get_peft_model(model, config)
    if not info.is_seq2seq:
        ensure_head_trainable(peft_model)
    return peft_model


def ensure_head_trainable(model: Any) -> None:
    """Raise when an encoder model has no trainable classification-head parameter."""
    if not any(p.requires_grad for _, p in head_parameters(model)):
        raise AutopeftError(
            "the classification head is not trainable (expected a module named "
            f"{' or '.join(HEAD_NAMES)}); training would stay at chance"
        )


def as_names(value: Any, param: str) -> list[str]:
    """A list of module names / groups from a string or a sequence of strings."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value or not all(isinstance(v, str) for v in value):
        raise AutopeftError(f"{param} must be a non-empty list of module names, got {value!r}")
    return list(value)


def positive_int(value: Any, param: str) -> int:
    """``value`` as a positive int, or an error that names ``param``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutopeftError(f"{param} must be a positive integer, got {value!r}")
    return value


def probability(value: Any, param: str) -> float:
    """``value`` as a float in [0, 1), or an error that names ``param``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise AutopeftError(f"{param} must be a number in [0, 1), got {value!r}")
    return float(value)


def boolean(value: Any, param: str) -> bool:
    """``value`` as a bool (no truthy strings), or an error that names ``param``."""
    if not isinstance(value, bool):
        raise AutopeftError(f"{param} must be true or false, got {value!r}")
    return value


@contextmanager
def quiet(message: str) -> Iterator[None]:
    """Hide one known, harmless warning (``message`` is a regex on its start).

    Use only for warnings checked to be harmless; the call site says why.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=message)
        yield
