"""Building models: the dtype each parameter is held in (``hold_frozen_in``)."""

from __future__ import annotations

import pytest
import torch

from autopeft.memory.step import (
    apply_method,
    build_base_model,
    make_batch,
    make_optimizer,
    training_step,
)
from autopeft.modeling import hold_frozen_in
from autopeft.runner.memory import tensor_bytes
from autopeft.testing import tiny_bert_config, tiny_t5_config

CONFIGS = {"t5": tiny_t5_config, "bert": tiny_bert_config}


def _dtypes(model):
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    trainable = {p.dtype for p in model.parameters() if p.requires_grad}
    return frozen, trainable


@pytest.mark.parametrize("dtype, torch_dtype", [("bf16", torch.bfloat16),
                                                ("fp16", torch.float16)])
@pytest.mark.parametrize("kind, method", [("bert", "lora"), ("bert", "bitfit"),
                                          ("t5", "ia3"), ("t5", "prefix_tuning")])
def test_16_bit_base_keeps_trainable_parameters_fp32(kind, method, dtype, torch_dtype):
    config = CONFIGS[kind]()
    torch.manual_seed(0)
    model = apply_method(build_base_model(config, device="cpu"), method, None)
    before = tensor_bytes(model)
    frozen_before = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    hold_frozen_in(model, dtype)
    frozen, trainable = _dtypes(model)
    assert frozen == {torch_dtype} and trainable == {torch.float32}
    assert tensor_bytes(model) == before - 2 * frozen_before  # 2 bytes saved per frozen weight


def test_tied_weights_stay_tied():
    model = build_base_model(tiny_t5_config(tie_word_embeddings=True), device="cpu")
    for p in model.parameters():
        p.requires_grad_(False)
    hold_frozen_in(model, "bf16")
    assert model.lm_head.weight is model.shared.weight
    assert model.shared.weight.dtype == torch.bfloat16


def test_fp32_casts_a_16_bit_checkpoint_up_and_meta_models_work():
    model = build_base_model(tiny_bert_config(), device="meta").to(torch.bfloat16)
    model.classifier.weight.requires_grad_(True)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("classifier"))
    hold_frozen_in(model, "fp32")
    assert _dtypes(model) == ({torch.float32}, {torch.float32})
    hold_frozen_in(model, "bf16")
    assert _dtypes(model) == ({torch.bfloat16}, {torch.float32})
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("kind, method", [("bert", "lora"), ("t5", "lora"), ("t5", "ia3"),
                                          ("bert", "prompt_tuning"), ("t5", "prefix_tuning"),
                                          ("bert", "bitfit")])
def test_a_bf16_base_trains_under_autocast(kind, method):
    """The GPU branch's dtype mix, run on CPU (CPU autocast stands in for CUDA's): frozen
    bf16 weights, fp32 adapters, fp32 gradients and AdamW state."""
    config = CONFIGS[kind]()
    torch.manual_seed(0)
    model = hold_frozen_in(apply_method(build_base_model(config, device="cpu"), method, None),
                           "bf16")
    opt = make_optimizer("adamw", model)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    for _ in range(2):
        training_step(model, opt, lambda: make_batch(config, batch_size=2, seq_len=8,
                                                     target_len=3), dtype="bf16")
    moved = [n for n, p in model.named_parameters() if p.requires_grad
             and not torch.equal(p.detach(), before[n])]
    assert moved  # the adapters were updated
    for state in opt.state.values():
        assert all(v.dtype == torch.float32 for k, v in state.items() if k != "step")
