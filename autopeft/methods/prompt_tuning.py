"""Prompt tuning (Lester et al., 2021) through peft: trainable soft tokens before the input.

The trainable count is ``num_virtual_tokens * d_model`` (plus an encoder's head).

peft quirk on seq2seq: with task ``SEQ_2_SEQ_LM`` peft allocates ``2 * num_virtual_tokens``
prompt rows (``num_transformer_submodules=2``, one set meant for the decoder) but its forward
and ``generate`` only ever prepend the first ``num_virtual_tokens`` rows to the encoder input.
The other half never receives a gradient yet counts as trainable. We set
``num_transformer_submodules=1`` so that every trainable parameter is used and the count is
honest; the prompts still go to the encoder exactly as before.
"""

from __future__ import annotations

from typing import Any

from autopeft.methods import _peft
from autopeft.methods.base import Method, ModelInfo, register_method


def _apply(model: Any, params: dict, info: ModelInfo) -> Any:
    from peft import PromptTuningConfig

    config = PromptTuningConfig(
        task_type=_peft.task_type(info),
        num_virtual_tokens=_peft.positive_int(params["num_virtual_tokens"], "num_virtual_tokens"),
        num_transformer_submodules=1,
    )
    return _peft.wrap(model, config, info)


METHOD = register_method(
    Method(
        name="prompt_tuning",
        description="Prompt tuning: trainable soft-prompt embeddings prepended to the input (peft)",
        params={"num_virtual_tokens": 20},
        apply=_apply,
        # Soft prompts barely move at LoRA-like rates: Lester et al. used 0.3 (Adafactor) and
        # peft's examples use 3e-2 with AdamW, so the range is shifted up a decade.
        lr_range=(1e-3, 1e-1),
    )
)
