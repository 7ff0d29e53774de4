"""Trial execution: plain functions, testable without Ray."""

from __future__ import annotations

from autopeft.runner.config import TrialConfig, TrialResult

__all__ = ["TrialConfig", "TrialResult", "run_trial"]


def __getattr__(name: str):  # lazy: run_trial pulls in torch
    if name == "run_trial":
        from autopeft.runner.trial import run_trial

        return run_trial
    raise AttributeError(name)
