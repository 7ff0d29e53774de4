"""The search budget: one declarative object for per-trial and whole-search limits."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from autopeft.errors import AutopeftError


@dataclass(frozen=True)
class Budget:
    """Per-trial and whole-search limits.

    Attributes:
        epochs: Training epochs per trial (the survey trained 3).
        max_steps: Optional cap on optimizer steps per trial.
        trial_timeout: Optional wall-clock cap in seconds per trial (training stops, the
            trial is evaluated and stored as ``timeout``).
        trials: Number of trials in the whole search.
        time_budget: Optional wall-clock cap in seconds for the whole search.
    """

    epochs: float = 3.0
    max_steps: int | None = None
    trial_timeout: float | None = None
    trials: int = 10
    time_budget: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "--epochs": self.epochs,
            "--max-steps": self.max_steps,
            "--trial-timeout": self.trial_timeout,
            "--trials": self.trials,
            "--time-budget": self.time_budget,
        }
        for flag, value in checks.items():
            if value is not None and not value > 0:
                raise AutopeftError(f"{flag} must be positive, got {value}")

    def to_dict(self) -> dict:
        return asdict(self)
