"""What one trial is asked to do, and what it reports back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.precision import PRECISIONS


@dataclass
class TrialConfig:
    """One trial: a model, a task, a method with its parameters, and the per-trial budget.

    Attributes:
        task: Task name (``glue/sst2``).
        model: Hub id or local folder.
        method: Registry name of the PEFT method.
        params: The method's parameters (missing ones take the method's defaults).
        learning_rate: Peak learning rate (linear warm-up then linear decay).
        epochs: Training epochs; fractional values train part of the last epoch.
        max_steps: Optional cap on optimizer steps.
        timeout: Optional wall-clock cap on training in seconds; the trial then stops,
            is evaluated and is stored as ``timeout``.
        batch_size: Training batch size (evaluation uses twice this).
        max_length: Input truncation length in tokens.
        seed: Seed of model head init, dropout and batch order.
        precision: ``auto`` (bf16 where the GPU supports it, else fp16 on GPU, fp32 on CPU),
            or one of ``fp32``, ``bf16``, ``fp16``.
        threads: torch intra-op threads on CPU (None: torch's default).
        warmup_ratio: Fraction of steps spent warming up the learning rate.
        weight_decay: AdamW weight decay.
        group_by_length: Length-grouped batches (False only for the padding benchmark).
        pad_to: Pad every batch to this many tokens (only for the padding benchmark).
        data_dir, train_samples, eval_samples: Task data location and subsampling, used
            when ``run_trial`` has to prepare the data itself.
        trust_remote_code: Allow model repositories with custom code.
        eval_every: Steps between intermediate evaluations when ``run_trial`` is given a
            ``report`` callback (early stopping); default once per epoch.
        save_dir: Where a completed trial saves what it trained (peft adapter files);
            None saves nothing.
        save_full: Also save full fine-tuning trials (a whole model each).
        grad_accum: Split each batch into this many micro-batches (same effective batch,
            less activation memory); set by the planner when a batch would not fit.
    """

    task: str
    model: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    learning_rate: float = 1e-3
    epochs: float = 3.0
    max_steps: int | None = None
    timeout: float | None = None
    batch_size: int = 16
    max_length: int = 256
    seed: int = 0
    precision: str = "auto"
    threads: int | None = None
    warmup_ratio: float = 0.06
    weight_decay: float = 0.0
    group_by_length: bool = True
    pad_to: int | None = None
    data_dir: str | None = None
    train_samples: int | None = None
    eval_samples: int | None = None
    trust_remote_code: bool = False
    eval_every: int | None = None
    save_dir: str | None = None
    save_full: bool = False
    grad_accum: int = 1

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise AutopeftError(f"--precision must be one of {', '.join(PRECISIONS)}")
        if not self.learning_rate > 0:
            raise AutopeftError(f"learning rate must be positive, got {self.learning_rate}")
        for name in ("epochs", "batch_size", "max_length", "grad_accum"):
            if not getattr(self, name) > 0:
                raise AutopeftError(f"--{name.replace('_', '-')} must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrialResult:
    """What a trial reports; stored as one row whatever its status.

    ``status`` is a :class:`~autopeft.status.TrialStatus` (``running`` only in the partial
    results an early-stopping scheduler sees), with ``reason`` saying why for every status
    but completed.
    ``peak_memory_bytes`` is measured as ``memory_kind`` says, by the meter named in
    ``peak_memory_meter`` (``cuda_allocated``, ``cpu_tensors`` or ``cpu_rss``; see
    runner/memory.py); ``rss_peak_bytes`` is the resident-set figure measured beside the
    ``cpu_tensors`` meter (weights + RSS growth), for comparison.
    ``unparseable_predictions`` of the ``eval_examples`` dev predictions were generated text
    that is no label (0 for classification heads); when all of them are, the trial is
    ``failed`` whatever its metrics say.
    """

    status: str
    reason: str | None = None
    primary_metric: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    trainable_params: int | None = None
    total_params: int | None = None
    peak_memory_bytes: int | None = None
    memory_kind: str | None = None
    peak_memory_meter: str | None = None
    rss_peak_bytes: int | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    examples_per_second: float | None = None
    steps: int | None = None
    unparseable_predictions: int | None = None
    eval_examples: int | None = None
    epochs_completed: float | None = None
    device: str | None = None
    adapter_path: str | None = None
    # the whole traceback of a trial that raised (``reason`` keeps its first line)
    traceback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
