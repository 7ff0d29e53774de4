"""Peak training memory of a trial, predicted from the model config alone.

The model is built on the ``meta`` device, the method is applied through the registry (so
every registered method is handled the same way, including ones added later), and its
parameters are swapped for fake tensors (``FakeTensorMode``): they have shapes, dtypes and
a CPU device but no data. Two real training steps (:func:`autopeft.memory.step.training_step`,
the runner's loop) then run on those fake tensors while an
:class:`~autopeft.memory.tracker.AllocationTracker` counts the bytes of every tensor storage
alive, so the peak covers weights, gradients, optimizer state, the activations saved for
backward and each operator's temporaries, with no weights loaded and no memory allocated.
Two steps because AdamW allocates its state in the first: the peak is that of the second.

What "peak" means is what the trial runner measures on a GPU, ``max_memory_allocated``:
bytes of live tensors, excluding the CUDA context, kernels' private workspaces (cuBLAS,
cuDNN) and the caching allocator's unused reserve. :class:`~autopeft.hardware.Profile`
budgets keep headroom for those.

Assumptions, each what a real step does or the costlier of two branches: the batch holds
one padded position (models skip the attention mask when it is all ones, which a trace
cannot see; padded batches are the common case); a value read out of a fake tensor (a
random keep/drop decision) takes the branch that runs the module; CPU kernels stand in for
CUDA ones (same saved tensors for the eager code of T5/BERT; SDPA backends may differ).

One known, conservative bias: under any dispatch mode (the tracker is one) autograd never
accumulates a gradient in place, so where eager code adds a second gradient into a buffer
it alone holds, the trace briefly holds one extra buffer: at most one activation gradient
(tens of MiB for t5-large at 8 x 256, ~0.4%), +2% on MiniLM + MAM at 8 x 64 in
``scripts/bench_memory.py``.

Evaluation (generation under ``inference_mode``) is not modelled: it holds no gradients,
optimizer temporaries or saved activations and usually stays below a training step.

Why not the analytical formulas (weights + 16 bytes per trainable parameter + activations
per layer): activations depend on the method (prefix tuning lengthens attention, IA3 saves
extra products, LoRA saves its inputs) and on the model code; tracing the real code is
right for every method without a per-method model.

``import autopeft.memory`` stays light: torch is imported when a prediction is made.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from autopeft.errors import AutopeftError
from autopeft.memory.step import OPTIMIZERS
from autopeft.precision import DTYPES

if TYPE_CHECKING:
    from autopeft.hardware.profiles import Profile

# Verbalised GLUE/SuperGLUE labels are at most ~6 T5 tokens with </s>.
DEFAULT_TARGET_LEN = 8
DEVICES = ("cuda", "cpu")


@dataclass(frozen=True)
class MemoryPrediction:
    """Predicted peak training memory and what is alive at that moment.

    The four parts sum to ``total_bytes``: they are a snapshot at the peak, not the sizes
    each part reaches at its own maximum. ``details`` holds those full sizes.

    Attributes:
        total_bytes: Peak bytes of live tensors over two training steps.
        weights: Frozen parameters and buffers.
        trainable_state: Trainable parameters, their gradients alive at the peak and the
            optimizer state. When the peak falls in the backward pass only part of the
            gradients exist; ``details["trainable_footprint"]`` is the full
            params + grads + optimizer state (16 bytes per fp32 parameter with AdamW).
        activations: Tensors created by the forward pass still alive (saved for backward),
            the batch included.
        temporaries: Tensors created in backward or in the optimizer step that are neither
            gradients nor optimizer state (gradients of activations, optimizer
            intermediates).
        method: The method name.
        details: Where the peak happened (``peak_step``, ``peak_phase``), parameter
            counts, ``trainable_param_bytes``, ``grad_bytes``, ``optimizer_state_bytes``,
            ``trainable_footprint``, the inputs of the prediction and ``seconds`` it took.
    """

    total_bytes: int
    weights: int
    trainable_state: int
    activations: int
    temporaries: int
    method: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = self.weights + self.trainable_state + self.activations + self.temporaries
        if parts != self.total_bytes:
            raise ValueError(f"memory parts sum to {parts}, not to total {self.total_bytes}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutopeftError(f"{name} must be a positive integer, got {value!r}")
    return value


def _to_fake(model: Any, fake_mode: Any) -> None:
    """Replace every parameter and buffer by a fake CPU tensor of the same shape and dtype.

    peft cannot wrap a model under ``FakeTensorMode`` (its weakref swap fails), hence this
    order: build and wrap on ``meta``, then swap. Shared parameters (T5's tied embedding,
    peft's aliases) stay shared: one fake tensor per original object.
    """
    import torch

    memo: dict[int, tuple[Any, Any]] = {}  # id -> (original kept alive, replacement)

    def fake_of(t: Any, as_param: bool) -> Any:
        hit = memo.get(id(t))
        if hit is None:
            new = torch.empty(t.shape, dtype=t.dtype, device="cpu")
            if as_param:
                new = torch.nn.Parameter(new, requires_grad=t.requires_grad)
            hit = memo[id(t)] = (t, new)
        return hit[1]

    with fake_mode:
        for module in model.modules():
            for name, p in list(module._parameters.items()):
                if p is not None:
                    module._parameters[name] = fake_of(p, as_param=True)
            for name, b in list(module._buffers.items()):
                if b is not None:
                    module._buffers[name] = fake_of(b, as_param=False)


def _untraceable() -> tuple[type[Exception], ...]:
    """Errors that mean "fake tensors cannot run this code", not a bug of ours."""
    from torch._subclasses import fake_tensor as ft

    # RuntimeError: a method's own sanity check on tensor values (VB-LoRA checks its logits
    # for inf) sees the tracker's assumed scalars and fires; no real step raises it there.
    return (ft.DataDependentOutputException, ft.DynamicOutputShapeException,
            ft.UnsupportedOperatorException, ft.UnsupportedFakeTensorException, RuntimeError)


def predict_peak_memory(
    config: Any,
    method: str,
    params: dict | None = None,
    *,
    batch_size: int,
    seq_len: int,
    target_len: int | None = None,
    dtype: str = "fp32",
    optimizer: str = "adamw",
    num_labels: int = 2,
    device: str = "cuda",
) -> MemoryPrediction:
    """Predict the peak memory of training ``method`` on the model of ``config``.

    Args:
        config: A transformers ``PretrainedConfig``. Encoder-decoder configs are trained
            text-to-text (``AutoModelForSeq2SeqLM``), others get a classification head
            (``AutoModelForSequenceClassification``), as the trial runner builds them.
        method: A registered method name (``lora``, ``full``, ...).
        params: The method's hyper-parameters (defaults for those not given).
        batch_size: Examples per step.
        seq_len: Input tokens per example (padded batch length).
        target_len: Label tokens per example for seq2seq models (default
            ``DEFAULT_TARGET_LEN``); ignored for encoders.
        dtype: The training dtype: ``fp32``, or ``bf16`` / ``fp16`` (GPU only): frozen
            weights held in it, trainable parameters and optimizer state in fp32, autocast
            to it (:func:`autopeft.modeling.hold_frozen_in`, the runner's policy).
        optimizer: ``adamw`` (the runner's), ``adam`` or ``sgd`` (no momentum, no state).
        num_labels: Classification-head size for encoders (1 = regression).
        device: What to predict for: ``cuda`` (512-byte allocator blocks and torch's
            ``foreach`` optimizer kernels, as on a GPU) or ``cpu`` (exact bytes, for-loop
            optimizer, fp32 only).

    Returns:
        The prediction; the peak is over two steps (AdamW state exists from the first).

    Raises:
        AutopeftError: Bad arguments, an unknown method or parameter, a method that does
            not apply to this model, or model code that fake tensors cannot run (an output
            whose shape depends on data).
    """
    start = time.perf_counter()
    _positive(batch_size, "batch_size")
    _positive(seq_len, "seq_len")
    _positive(num_labels, "num_labels")
    is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    target = _positive(target_len, "target_len") if target_len is not None else DEFAULT_TARGET_LEN
    if dtype not in DTYPES:
        raise AutopeftError(f"unknown dtype '{dtype}'; known: {', '.join(DTYPES)}")
    if optimizer not in OPTIMIZERS:
        raise AutopeftError(f"unknown optimizer '{optimizer}'; known: {', '.join(OPTIMIZERS)}")
    if device not in DEVICES:
        raise AutopeftError(f"unknown device '{device}'; known: {', '.join(DEVICES)}")
    if device == "cpu" and dtype != "fp32":
        raise AutopeftError(f"CPU trials train in fp32, not {dtype}; use dtype fp32 on cpu")

    from torch._subclasses.fake_tensor import FakeTensorMode

    from autopeft.memory.step import (
        apply_method,
        build_base_model,
        make_batch,
        make_optimizer,
        training_step,
    )
    from autopeft.memory.tracker import AllocationTracker
    from autopeft.methods.base import get_method
    from autopeft.methods.counting import count_parameters
    from autopeft.modeling import hold_frozen_in

    resolved = get_method(method).resolve_params(params)
    model = apply_method(build_base_model(config, num_labels=num_labels), method, params)
    # The runner's dtype policy: frozen weights in the training dtype, trainable ones fp32.
    hold_frozen_in(model, dtype)
    counts = count_parameters(model)
    # Non-fake inputs: peft keeps a few plain tensors outside the module tree (prompt-token
    # indices); they are converted on first use.
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    _to_fake(model, fake_mode)
    tracker = AllocationTracker(granularity=512 if device == "cuda" else 1, assume_scalars=True)

    def batch_fn() -> dict:
        return make_batch(config, batch_size=batch_size, seq_len=seq_len, target_len=target,
                          num_labels=num_labels)

    with fake_mode:
        tracker.track_model(model)
        opt = make_optimizer(optimizer, model, foreach=True if device == "cuda" else None)
        try:
            for step in (1, 2):
                tracker.step = step
                with tracker:
                    training_step(model, opt, batch_fn, dtype=dtype, tracker=tracker)
        except _untraceable() as exc:
            raise AutopeftError(
                f"cannot predict the memory of method '{method}': the model's code does "
                f"something fake tensors cannot trace ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})"
            ) from exc
        finally:
            tracker.remove_hooks()
        trainable = [p for p in model.parameters() if p.requires_grad]
        state = [v for s in opt.state.values() for v in s.values() if hasattr(v, "shape")]
        param_bytes = tracker.state_bytes(trainable)
        state_bytes = tracker.state_bytes(state)

    peak = tracker.peak_breakdown
    step, phase = tracker.peak_where
    details = {
        "peak_step": step,
        "peak_phase": phase,
        "trainable_params": counts.trainable,
        "total_params": counts.total,
        "trainable_param_bytes": param_bytes,
        "grad_bytes": tracker.max_grads,
        "optimizer_state_bytes": state_bytes,
        "trainable_footprint": param_bytes + tracker.max_grads + state_bytes,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "target_len": target if is_seq2seq else None,
        "dtype": dtype,
        "optimizer": optimizer,
        "device": device,
        "num_labels": num_labels,
        "params": resolved,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return MemoryPrediction(
        total_bytes=tracker.peak_bytes,
        weights=peak["weights"],
        trainable_state=peak["trainable_params"] + peak["grads"] + peak["optimizer_state"],
        activations=peak["activations"],
        temporaries=peak["temporaries"],
        method=method,
        details=details,
    )


def fits(prediction: MemoryPrediction, profile: Profile) -> bool:
    """Whether the predicted peak fits one trial's share of a profile's device memory.

    A device's usable memory (``profile.budget_bytes()``) is shared by the
    ``trials_per_device`` trials that run on it at once.
    """
    return prediction.total_bytes <= profile.trial_budget_bytes()
