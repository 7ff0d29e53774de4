"""The search budget: one declarative object for per-trial and whole-search limits."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from autopeft.options import check_fields, option


@dataclass(frozen=True)
class Budget:
    """Per-trial and whole-search limits; each field is also an ``autopeft search`` flag."""

    trials: int = field(default=10, metadata=option(positive=True))
    """number of trials (10)"""
    epochs: float = field(default=3.0, metadata=option(positive=True, result=True))
    """training epochs per trial (3, as the survey)"""
    max_steps: int | None = field(default=None, metadata=option(positive=True, result=True))
    """cap on optimizer steps per trial"""
    trial_timeout: float | None = field(default=None, metadata=option(
        positive=True, metavar="SECONDS", result=True))
    """cap on training seconds per trial (the trial is then evaluated and stored as timeout)"""
    time_budget: float | None = field(default=None, metadata=option(positive=True,
                                                                     metavar="SECONDS"))
    """cap on the whole search's seconds"""

    def __post_init__(self) -> None:
        check_fields(self)

    def to_dict(self) -> dict:
        return asdict(self)
