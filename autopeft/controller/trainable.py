"""The Ray Tune function trainable: decode the sampled config, run one trial, report once.

Each trial reports exactly once, at its end, with every stored field plus the objective
values under the names the searcher was given (``objective_values``).
"""

from __future__ import annotations

from typing import Any

from autopeft.status import TrialStatus

OBJECTIVE_KEYS = ("trainable_params", "peak_memory")


def objective_values(result: dict[str, Any], primary: str) -> dict[str, Any]:
    """Objective values for Optuna; empty unless the trial completed."""
    if result.get("status") != TrialStatus.COMPLETED:
        return {}
    return {
        primary: result["primary_metric"],
        "trainable_params": result["trainable_params"],
        "peak_memory": result["peak_memory_bytes"],
    }


def trainable(config: dict[str, Any], *, settings: Any, model_path: str, threads: int,
              space: dict[str, Any], data: Any, intermediate: bool = False,
              artifacts: str | None = None, progress: Any = None) -> None:
    """Ray Tune entry point: the study's :class:`~autopeft.settings.SearchSettings` (without
    secrets) plus the sampled ``config`` make the trial's TrialConfig.

    With ``intermediate`` the trial also reports its dev metrics during training, for an
    early-stopping scheduler (ASHA). With ``progress`` (an
    :class:`~autopeft.controller.progress.Inbox` handle) it sends live progress to the
    driver's display.
    """
    import ray
    from ray import tune

    from autopeft.controller.searcher import (
        CONFIRMS_KEY,
        GPU_KEY,
        GRAD_ACCUM_KEY,
        NUMBER_KEY,
        PREDICTED_KEY,
        PRIVATE_KEYS,
        SEED_KEY,
    )
    from autopeft.runner.trial import run_trial
    from autopeft.space import decode_config, space_from_dict

    number = int(config.get(NUMBER_KEY, -1))
    sampled = decode_config(space_from_dict(space), {k: v for k, v in config.items()
                                                     if k not in PRIVATE_KEYS})
    save_dir = f"{artifacts}/trial-{number}" if artifacts else None
    cfg = settings.to_trial_config(sampled, model_path=model_path, threads=threads,
                                   save_dir=save_dir,
                                   grad_accum=int(config.get(GRAD_ACCUM_KEY) or 1),
                                   seed=config.get(SEED_KEY))
    where = {"node_id": ray.get_runtime_context().get_node_id(),
             "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "method": sampled.method,
             "params": sampled.params, "learning_rate": sampled.learning_rate,
             "predicted_peak_bytes": config.get(PREDICTED_KEY), "grad_accum": cfg.grad_accum,
             "seed": cfg.seed, "confirms": config.get(CONFIRMS_KEY),
             "gpu_fraction": config.get(GPU_KEY)}
    primary = data.spec.primary_metric

    def report(partial: dict[str, Any]) -> None:
        tune.report({**partial, **where, primary: partial["primary_metric"],
                     "stopped_at_step": partial["steps"]})

    reporter = None
    if progress is not None:
        from autopeft.controller.progress import trial_reporter

        reporter = trial_reporter(progress, {
            "trial": number, "method": sampled.method, "params": sampled.params,
            "learning_rate": sampled.learning_rate,
            "predicted_bytes": config.get(PREDICTED_KEY)})
    result = run_trial(cfg, data, report=report if intermediate else None,
                       progress=reporter).to_dict()
    result.update(where)
    result.update(objective_values(result, primary))
    tune.report(result)
