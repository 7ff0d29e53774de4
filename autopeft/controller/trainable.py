"""The Ray Tune function trainable: decode the sampled config, run one trial, report once.

Each trial reports exactly once, at its end, with every stored field plus the objective
values under the names the searcher was given (``objective_values``).
"""

from __future__ import annotations

from typing import Any

OBJECTIVE_KEYS = ("trainable_params", "peak_memory")


def objective_values(result: dict[str, Any], primary: str) -> dict[str, Any]:
    """Objective values for Optuna; empty unless the trial completed."""
    if result.get("status") != "completed":
        return {}
    return {
        primary: result["primary_metric"],
        "trainable_params": result["trainable_params"],
        "peak_memory": result["peak_memory_bytes"],
    }


def trainable(config: dict[str, Any], *, base: dict[str, Any], space: dict[str, Any],
              data: Any) -> None:
    """Ray Tune entry point; ``base`` is the study's fixed TrialConfig fields."""
    from ray import tune

    from autopeft.controller.searcher import NUMBER_KEY
    from autopeft.runner.config import TrialConfig
    from autopeft.runner.trial import run_trial
    from autopeft.space import decode_config, space_from_dict

    sampled = decode_config(space_from_dict(space), {k: v for k, v in config.items()
                                                     if k != NUMBER_KEY})
    cfg = TrialConfig(**{**base, "method": sampled.method, "params": sampled.params,
                         "learning_rate": sampled.learning_rate})
    result = run_trial(cfg, data).to_dict()
    result.update(method=sampled.method, params=sampled.params,
                  learning_rate=sampled.learning_rate)
    result.update(objective_values(result, data.spec.primary_metric))
    tune.report(result)
