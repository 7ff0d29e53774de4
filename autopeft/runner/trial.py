"""``run_trial(config) -> TrialResult``: one budget-capped trial, with no Ray inside.

Every outcome is a result with a status (never an exception): the controller stores it as a
row and tells the sampler. A CUDA out-of-memory is caught and its memory released. A
text-to-text trial whose every dev prediction fails to parse as a label (e.g. generation of
pad tokens only) is ``failed``: its score would only measure how the metric scores junk.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from autopeft.errors import AutopeftError, MethodNotApplicable
from autopeft.runner.config import TrialConfig, TrialResult
from autopeft.runner.data import PreparedData, tokenize_task
from autopeft.runner.memory import PeakMemory
from autopeft.runner.progress import TrialProgress
from autopeft.status import TrialStatus

log = logging.getLogger(__name__)
MAX_TRACEBACK = 20_000  # characters of a failed trial's traceback kept (its last ones)


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


def build_trial_model(cfg: TrialConfig, spec: Any, dtype: str = "fp32"
                      ) -> tuple[Any, Any, Any]:
    """Base model with the method applied; returns (model, tokenizer, ModelRef).

    The base model and tokenizer come from this worker's warm copies when it ran a trial of
    the same model before (:mod:`autopeft.runner.warm`). The frozen weights are held in
    ``dtype`` (the trial's training dtype), the trainable parameters in fp32
    (:func:`autopeft.modeling.hold_frozen_in`), as the memory planner predicts them.
    """
    from autopeft.methods.base import ModelInfo, get_method
    from autopeft.modeling import hold_frozen_in, resolve_model
    from autopeft.runner import warm

    ref = resolve_model(cfg.model, trust_remote_code=cfg.trust_remote_code)
    tokenizer = warm.tokenizer(ref, trust_remote_code=cfg.trust_remote_code)
    model = warm.base_model(ref, num_labels=spec.num_labels,
                            trust_remote_code=cfg.trust_remote_code)
    method = get_method(cfg.method)
    model = method.build(model, cfg.params, ModelInfo.from_config(model.config))
    return hold_frozen_in(model, dtype), tokenizer, ref


def _save(model: Any, cfg: TrialConfig, result: TrialResult) -> None:
    """Save what a completed trial trained (full fine-tuning only with ``save_full``)."""
    if not cfg.save_dir or (cfg.method == "full" and not cfg.save_full):
        return
    from autopeft.methods.saving import save_adapter

    result.adapter_path = str(save_adapter(model, cfg.method, cfg.save_dir))


def _all_unparseable(unparsed: dict[int, str], n: int) -> str:
    """The reason of a trial none of whose ``n`` dev predictions parsed as a label."""
    first = min(unparsed, default=None)
    example = "" if first is None else (
        f" (e.g. dev example {first} generated {unparsed[first][:80]!r})")
    return f"all {n} dev predictions were unparseable{example}"


def run_trial(cfg: TrialConfig, data: PreparedData | None = None,
              report: Callable[[dict[str, Any]], None] | None = None,
              progress: TrialProgress | None = None) -> TrialResult:
    """Build, train within budget, evaluate; every failure becomes a status with a reason.

    With ``report``, the dev metrics are also evaluated every ``cfg.eval_every`` steps (or
    epoch) and passed to ``report`` as a ``running`` result, so that a scheduler such as
    ASHA can stop the trial early. ``progress`` hears of the trial's steps, evaluations
    and end as they happen (:mod:`autopeft.runner.progress`; default: nobody).
    """
    import torch

    from autopeft.methods.counting import count_parameters
    from autopeft.precision import device_dtype
    from autopeft.runner.train import predict, train
    from autopeft.tasks import compute_metrics
    from autopeft.tasks.metrics import bootstrap_standard_error

    _quiet_libraries()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = pick_device()
    start = time.monotonic()
    deadline = start + cfg.timeout if cfg.timeout else None
    result = TrialResult(status=TrialStatus.FAILED, device=str(device))
    model = None
    meter = PeakMemory(device)
    progress = progress or TrialProgress()
    progress.start()
    try:
        dtype = device_dtype(cfg.precision, device)
        if data is None:
            data = prepare_data(cfg)
        model, tokenizer, _ = build_trial_model(cfg, data.spec, dtype)
        count = count_parameters(model)
        result.trainable_params, result.total_params = count.trainable, count.total
        # On CPU the meter counts the model's tensors and every tensor created from here on
        # (grads, optimizer state, activations), as the planner predicts them.
        meter.track(model)
        with meter:
            progress.measure(lambda: (meter.current(), meter.read()))
            model.to(device)

            def checkpoint(step: int, epochs: float, train_seconds: float) -> None:
                t0 = time.perf_counter()
                preds = predict(model, data, tokenizer, cfg, device)
                metrics = compute_metrics(data.spec, preds, data.eval_references)
                partial = TrialResult(
                    status=TrialStatus.RUNNING, primary_metric=metrics[data.spec.primary_metric],
                    metrics=metrics, trainable_params=count.trainable, total_params=count.total,
                    peak_memory_bytes=meter.read(), memory_kind=meter.kind,
                    peak_memory_meter=meter.meter, steps=step,
                    unparseable_predictions=sum(p is None for p in preds),
                    eval_examples=len(preds), epochs_completed=epochs, device=str(device),
                    train_seconds=train_seconds, eval_seconds=time.perf_counter() - t0,
                    examples_per_second=step * cfg.batch_size / max(train_seconds, 1e-9),
                )
                progress.evaluated(step, partial.primary_metric)
                report(partial.to_dict())

            stats = train(model, data, tokenizer, cfg, device, deadline,
                          checkpoint if report else None, on_step=progress.step)
            result.train_seconds = stats.seconds
            result.steps, result.epochs_completed = stats.steps, stats.epochs_completed
            result.examples_per_second = stats.examples / max(stats.seconds, 1e-9)
            if stats.stopped_by == "diverged":
                result.status = TrialStatus.DIVERGED
                result.reason = f"loss became {stats.last_loss} at step {stats.steps}"
                return result
            progress.evaluating()
            t0 = time.perf_counter()
            unparsed: dict[int, str] = {}
            preds = predict(model, data, tokenizer, cfg, device, unparsed=unparsed)
            result.eval_seconds = time.perf_counter() - t0
        result.metrics = compute_metrics(data.spec, preds, data.eval_references)
        result.primary_metric = result.metrics[data.spec.primary_metric]
        if data.spec.primary_metric != "accuracy":  # accuracy's SE is binomial: no bootstrap
            primary = data.spec.primary_metric
            result.metrics[f"{primary}_se"] = bootstrap_standard_error(
                data.spec, preds, data.eval_references, primary, seed=cfg.seed)
        result.eval_examples = len(preds)
        result.unparseable_predictions = sum(p is None for p in preds)
        if preds and result.unparseable_predictions == len(preds):
            # its score only says how the metric treats junk: no result to rank or save
            result.status = TrialStatus.FAILED
            result.reason = _all_unparseable(unparsed, len(preds))
        elif stats.stopped_by == "timeout":
            result.status = TrialStatus.TIMEOUT
            result.reason = (
                f"training stopped at the {cfg.timeout:g} s trial timeout after {stats.steps} "
                "steps; metrics are from the partly trained model"
            )
        else:
            result.status = TrialStatus.COMPLETED
            _save(model, cfg, result)
    except MethodNotApplicable as exc:
        result.status, result.reason = TrialStatus.NOT_APPLICABLE, str(exc)
    except AutopeftError as exc:
        result.status, result.reason = TrialStatus.FAILED, str(exc)
    except Exception as exc:  # noqa: BLE001 - any crash ends only this trial
        result.traceback = traceback.format_exc()[-MAX_TRACEBACK:]
        if _is_oom(exc):
            result.status = TrialStatus.OOM
            result.reason = f"out of memory: {str(exc).splitlines()[0][:300]}"
        else:
            result.status = TrialStatus.FAILED
            first = str(exc).splitlines()[0][:300] if str(exc) else ""
            result.reason = f"{type(exc).__name__}: {first}"
            log.debug("trial failed:\n%s", result.traceback)
    finally:
        if meter.kind:
            result.peak_memory_bytes = meter.peak_bytes or meter.read()
            result.memory_kind, result.peak_memory_meter = meter.kind, meter.meter
            result.rss_peak_bytes = meter.rss_peak_bytes
        model = None  # drop the last reference: refcounting frees the tensors
        if device.type == "cuda":
            # GPU memory held by reference cycles (peft wrappers) and by torch's caching
            # allocator would stay with this process (transformers#13019); a full collection
            # costs ~0.3 s, which on CPU buys nothing the next automatic collection won't.
            gc.collect()
            torch.cuda.empty_cache()
        progress.finished(result.status, result.primary_metric, result.steps)
    return result
