"""The one function that counts trainable and total parameters.

Every place that reports a parameter count (trial results, the store, ``autopeft estimate``)
calls :func:`count_parameters`, so numbers always agree. peft's own
``get_nb_trainable_parameters`` and transformers' ``num_parameters`` disagree for prompt
learning (peft#1526), which is why neither is used.

What is counted:

* Each parameter once. Tied weights (T5's ``shared`` / ``lm_head``) are one ``nn.Parameter``
  and count once; distinct ``Parameter`` objects sharing one storage also count once on real
  devices (on ``meta`` there is no storage to compare, only object identity).
* ``trainable``: parameters with ``requires_grad``.
* ``total``: every parameter the wrapped model holds, including peft's bookkeeping copies:
  ``modules_to_save`` keeps a frozen original of the classification head beside the trainable
  copy, and LN tuning keeps a frozen original of each tuned norm. So for the peft methods
  ``total == base model total + trainable``; for full fine-tuning and BitFit ``total`` is the
  base model's.

Works on ``meta``-device models (only shapes are read), which memory estimates build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamCount:
    """Trainable and total parameter counts of a model.

    Attributes:
        trainable: Parameters with ``requires_grad``, each counted once.
        total: All parameters, each counted once (see the module docstring).
    """

    trainable: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.trainable <= self.total:
            raise ValueError(f"invalid parameter count: {self.trainable} of {self.total}")

    @property
    def trainable_percent(self) -> float:
        """Trainable parameters as a percentage of ``total`` (0.0 for an empty model)."""
        return 100.0 * self.trainable / self.total if self.total else 0.0


def count_parameters(model: Any) -> ParamCount:
    """Count the unique trainable and total parameters of ``model``.

    Args:
        model: Any ``torch.nn.Module`` (a transformers model, a peft ``PeftModel``, ...),
            on any device including ``meta``.

    Returns:
        The counts; see the module docstring for what ``total`` includes.
    """
    from autopeft.tensors import distinct

    trainable = total = 0
    # remove_duplicate=False so that the dedupe is ours and explicit, whatever the module
    # tree looks like (peft registers the same embedding under two parents).
    params = {id(p): p for _, p in model.named_parameters(remove_duplicate=False)}
    for param in distinct(params.values()):
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return ParamCount(trainable=trainable, total=total)
