"""The Ray Tune function trainable: decode the sampled config, run one trial, report once.

Each trial reports exactly once, at its end, with every stored field plus the objective
values under the names the searcher was given (``objective_values``).
"""

from __future__ import annotations

from typing import Any

OBJECTIVE_KEYS = ("trainable_params", "peak_memory")


ROW_FIELDS = (
    "method", "params", "learning_rate", "status", "reason", "primary_metric", "metrics",
    "trainable_params", "total_params", "peak_memory_bytes", "memory_kind", "train_seconds",
    "eval_seconds", "examples_per_second", "steps", "unparseable_predictions", "eval_examples",
)


def trial_row(result: dict[str, Any]) -> dict[str, Any]:
    """The stored fields of a reported result (``Store.add_trial`` keyword arguments)."""
    row = {k: result.get(k) for k in ROW_FIELDS}
    row["params"] = row["params"] or {}
    row["extra"] = {k: result.get(k) for k in ("device", "epochs_completed", "node_id",
                                                "gpu_ids", "node_ip", "stopped_at_step",
                                                "adapter_path", "predicted_peak_bytes",
                                                "grad_accum")
                    if result.get(k) is not None}
    return row


def objective_values(result: dict[str, Any], primary: str) -> dict[str, Any]:
    """Objective values for Optuna; empty unless the trial completed."""
    if result.get("status") != "completed":
        return {}
    return {
        primary: result["primary_metric"],
        "trainable_params": result["trainable_params"],
        "peak_memory": result["peak_memory_bytes"],
    }


FAULT_ENV = "AUTOPEFT_FAULT_INJECT"


def inject_fault(number: int) -> None:
    """Fault injection for tests of the controller: ``AUTOPEFT_FAULT_INJECT="1:exit,3:oom"``.

    ``exit`` kills the Ray worker process (a Ray-level failure), ``raise`` raises inside the
    trial, ``oom`` raises torch's CUDA out-of-memory error, ``nan`` makes the loss diverge.
    Unset (always, outside tests) it does nothing.
    """
    import os

    plan = dict(item.split(":", 1) for item in os.environ.get(FAULT_ENV, "").split(",") if item)
    fault = plan.get(str(number))
    if fault == "exit":
        os._exit(3)
    if fault in ("raise", "oom", "nan"):
        os.environ["AUTOPEFT_TRIAL_FAULT"] = fault


def trainable(config: dict[str, Any], *, base: dict[str, Any], space: dict[str, Any],
              data: Any, intermediate: bool = False, artifacts: str | None = None) -> None:
    """Ray Tune entry point; ``base`` is the study's fixed TrialConfig fields.

    With ``intermediate`` the trial also reports its dev metrics during training, for an
    early-stopping scheduler (ASHA).
    """
    import ray
    from ray import tune

    from autopeft.controller.searcher import (
        GRAD_ACCUM_KEY,
        NUMBER_KEY,
        PREDICTED_KEY,
        PRIVATE_KEYS,
    )
    from autopeft.runner.config import TrialConfig
    from autopeft.runner.trial import run_trial
    from autopeft.space import decode_config, space_from_dict

    number = int(config.get(NUMBER_KEY, -1))
    inject_fault(number)
    sampled = decode_config(space_from_dict(space), {k: v for k, v in config.items()
                                                     if k not in PRIVATE_KEYS})
    save_dir = f"{artifacts}/trial-{number}" if artifacts else None
    cfg = TrialConfig(**{**base, "method": sampled.method, "params": sampled.params,
                         "learning_rate": sampled.learning_rate, "save_dir": save_dir,
                         "grad_accum": int(config.get(GRAD_ACCUM_KEY) or 1)})
    where = {"node_id": ray.get_runtime_context().get_node_id(),
             "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "method": sampled.method,
             "params": sampled.params, "learning_rate": sampled.learning_rate,
             "predicted_peak_bytes": config.get(PREDICTED_KEY), "grad_accum": cfg.grad_accum}
    primary = data.spec.primary_metric

    def report(partial: dict[str, Any]) -> None:
        tune.report({**partial, **where, primary: partial["primary_metric"],
                     "stopped_at_step": partial["steps"]})

    result = run_trial(cfg, data, report=report if intermediate else None).to_dict()
    result.update(where)
    result.update(objective_values(result, primary))
    tune.report(result)
