"""Never launch a trial that cannot fit: predict its peak for the study's profile first.

For each sampled configuration the planner predicts the training peak (weights, trainable
state, activations; :func:`autopeft.memory.predict_peak_memory`) at the study's batch size
and longest training sequence. Over the per-trial budget of the profile, it tries smaller
micro-batches with gradient accumulation (same effective batch); if even one example per
micro-batch does not fit, the configuration is infeasible and is never trained. On a GPU
profile the prediction also sizes the trial's share of a GPU, so small trials pack together.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.precision import profile_dtype


@dataclass(frozen=True)
class Plan:
    """How (or whether) a configuration runs on the profile."""

    fits: bool
    batch_size: int
    grad_accum: int
    predicted_bytes: int | None
    budget_bytes: int
    gpu_fraction: float
    reason: str | None = None
    prediction: dict[str, Any] | None = None

    def violation(self) -> float:
        """Optuna constraint value: > 0 when infeasible (share of the budget exceeded)."""
        if self.predicted_bytes is None:
            return 0.0
        return self.predicted_bytes / self.budget_bytes - 1.0


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


@dataclass
class Planner:
    """Memory planning for one study (one model, batch size, sequence length, profile)."""

    model_config: Any
    num_labels: int
    batch_size: int
    seq_len: int
    target_len: int | None
    precision: str
    profile: Any
    cache: dict[str, Plan] = field(default_factory=dict)

    @classmethod
    def for_study(cls, settings: Any, data: Any, profile: Any, model_config: Any) -> Planner:
        """The planner of a search: its batch size, longest training input and precision."""
        return cls(model_config, num_labels=data.spec.num_labels,
                   batch_size=settings.batch_size, seq_len=max(data.train_lengths),
                   target_len=data.max_target_length or None,
                   precision=settings.precision, profile=profile)

    def _predict(self, method: str, params: dict, batch: int) -> Any:
        from autopeft.memory import predict_peak_memory

        return predict_peak_memory(
            self.model_config, method, params, batch_size=batch, seq_len=self.seq_len,
            target_len=self.target_len, dtype=profile_dtype(self.precision, self.profile),
            num_labels=self.num_labels, device=self.profile.device,
        )

    def _gpu_fraction(self, predicted: int) -> float:
        if self.profile.device != "cuda":
            return 0.0
        # whole-device budget, in steps of one trial slot (or quarters): Ray packs trials
        # whose predicted peaks fit on one GPU together
        slots = self.profile.trials_per_device if self.profile.trials_per_device > 1 else 4
        share = predicted / self.profile.budget_bytes()
        return min(1.0, max(1 / slots, math.ceil(share * slots) / slots))

    def plan(self, method: str, params: dict) -> Plan:
        """Cached per (method, params): the learning rate does not change memory."""
        key = json.dumps([method, params], sort_keys=True, default=str)
        if key not in self.cache:
            self.cache[key] = self._plan(method, params)
        return self.cache[key]

    def _plan(self, method: str, params: dict) -> Plan:
        budget = self.profile.trial_budget_bytes()
        batch, accum = self.batch_size, 1
        last = None
        while True:
            try:
                pred = self._predict(method, params, batch)
            except AutopeftError as exc:  # untraceable: run it and let the runner measure
                return Plan(True, self.batch_size, 1, None, budget, self._fallback_gpu(),
                            reason=f"no prediction ({exc})")
            last = pred
            if pred.total_bytes <= budget:
                return Plan(True, batch, accum, pred.total_bytes, budget,
                            self._gpu_fraction(pred.total_bytes), prediction=pred.to_dict())
            if batch == 1:
                break
            accum *= 2
            batch = math.ceil(self.batch_size / accum)
        return Plan(
            False, 1, self.batch_size, last.total_bytes, budget, 0.0, prediction=last.to_dict(),
            reason=(f"predicted peak {_gib(last.total_bytes)} (weights {_gib(last.weights)}, "
                    f"trainable state {_gib(last.trainable_state)}, activations "
                    f"{_gib(last.activations)}) exceeds the {_gib(budget)} per-trial budget of "
                    f"profile '{self.profile.name}' even one example at a time"),
        )

    def _fallback_gpu(self) -> float:
        return 1.0 if self.profile.device == "cuda" else 0.0
