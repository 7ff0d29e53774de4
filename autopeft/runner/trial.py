"""``run_trial(config) -> TrialResult``: one budget-capped trial, with no Ray inside.

Every outcome is a result with a status (never an exception): the controller stores it as a
row and tells the sampler. A CUDA out-of-memory is caught and its memory released.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
from typing import Any

from autopeft.errors import AutopeftError, MethodNotApplicable
from autopeft.runner.config import TrialConfig, TrialResult
from autopeft.runner.data import PreparedData, tokenize_task
from autopeft.runner.memory import PeakMemory

log = logging.getLogger(__name__)


def prepare_data(cfg: TrialConfig, tokenizer: Any | None = None) -> PreparedData:
    """Load and tokenise the task for ``cfg.model`` (done once per study by the controller)."""
    from autopeft.modeling import load_tokenizer, resolve_model
    from autopeft.tasks import load_task

    ref = resolve_model(cfg.model, trust_remote_code=cfg.trust_remote_code)
    tokenizer = tokenizer or load_tokenizer(ref, trust_remote_code=cfg.trust_remote_code)
    data = load_task(
        cfg.task, data_dir=cfg.data_dir, train_samples=cfg.train_samples,
        eval_samples=cfg.eval_samples, seed=cfg.seed,
    )
    return tokenize_task(data, tokenizer, is_seq2seq=ref.is_seq2seq, max_length=cfg.max_length)


def pick_device() -> Any:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _quiet_libraries() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def build_trial_model(cfg: TrialConfig, spec: Any) -> tuple[Any, Any, Any]:
    """Base model with the method applied; returns (model, tokenizer, ModelRef)."""
    from autopeft.methods.base import ModelInfo, get_method
    from autopeft.modeling import load_model, load_tokenizer, resolve_model

    ref = resolve_model(cfg.model, trust_remote_code=cfg.trust_remote_code)
    tokenizer = load_tokenizer(ref, trust_remote_code=cfg.trust_remote_code)
    model = load_model(ref, num_labels=spec.num_labels, trust_remote_code=cfg.trust_remote_code)
    method = get_method(cfg.method)
    model = method.build(model, cfg.params, ModelInfo.from_config(model.config))
    return model, tokenizer, ref


def run_trial(cfg: TrialConfig, data: PreparedData | None = None) -> TrialResult:
    """Build, train within budget, evaluate; every failure becomes a status with a reason."""
    import torch

    from autopeft.methods.counting import count_parameters
    from autopeft.runner.train import predict, train
    from autopeft.tasks import compute_metrics

    _quiet_libraries()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = pick_device()
    start = time.monotonic()
    deadline = start + cfg.timeout if cfg.timeout else None
    result = TrialResult(status="failed", device=str(device))
    model = None
    meter = PeakMemory(device)
    try:
        if data is None:
            data = prepare_data(cfg)
        with meter:
            model, tokenizer, _ = build_trial_model(cfg, data.spec)
            count = count_parameters(model)
            result.trainable_params, result.total_params = count.trainable, count.total
            model.to(device)
            stats = train(model, data, tokenizer, cfg, device, deadline)
            result.train_seconds = stats.seconds
            result.steps, result.epochs_completed = stats.steps, stats.epochs_completed
            result.examples_per_second = stats.examples / max(stats.seconds, 1e-9)
            if stats.stopped_by == "diverged":
                result.status = "diverged"
                result.reason = f"loss became {stats.last_loss} at step {stats.steps}"
                return result
            t0 = time.perf_counter()
            preds = predict(model, data, tokenizer, cfg, device)
            result.eval_seconds = time.perf_counter() - t0
        result.metrics = compute_metrics(data.spec, preds, data.eval_references)
        result.primary_metric = result.metrics[data.spec.primary_metric]
        if stats.stopped_by == "timeout":
            result.status = "timeout"
            result.reason = (
                f"training stopped at the {cfg.timeout:g} s trial timeout after {stats.steps} "
                "steps; metrics are from the partly trained model"
            )
        else:
            result.status = "completed"
    except MethodNotApplicable as exc:
        result.status, result.reason = "not_applicable", str(exc)
    except AutopeftError as exc:
        result.status, result.reason = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - any crash ends only this trial
        if _is_oom(exc):
            result.status = "oom"
            result.reason = f"out of memory: {str(exc).splitlines()[0][:300]}"
        else:
            result.status = "failed"
            first = str(exc).splitlines()[0][:300] if str(exc) else ""
            result.reason = f"{type(exc).__name__}: {first}"
            log.debug("trial failed:\n%s", traceback.format_exc())
    finally:
        if meter.kind:
            result.peak_memory_bytes = meter.peak_bytes or meter.read()
            result.memory_kind = meter.kind
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result
