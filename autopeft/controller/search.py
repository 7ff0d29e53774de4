"""``run_search``: validate everything, then drive Ray Tune + Optuna and store every trial.

The driver process alone writes to the database (a Tune callback stores each finished trial);
trials only report. Nothing is written before all input has been validated.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.settings import SearchSettings
from autopeft.status import StudyStatus, controller_identity


def artifacts_root(settings: SearchSettings, name: str) -> Path:
    """Where a study's trials keep what they trained: ``<artifacts dir>/<study>/trial-N``."""
    from autopeft.paths import autopeft_home

    base = Path(settings.artifacts_dir).expanduser() if settings.artifacts_dir else (
        autopeft_home() / "artifacts")
    return (base / name).resolve()


def make_study_name(task: str, model: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(model.rstrip("/")).name or model
    return re.sub(r"[^\w.\-]+", "-", f"{task.replace('/', '-')}-{base}-{stamp}").lower()


def _applicable_space(space: Any, ref: Any, spec: Any, settings: SearchSettings,
                      say: Callable[[str], None]) -> Any:
    """Drop methods that cannot apply to the model (checked on a meta-device copy)."""
    from autopeft.methods.base import ModelInfo, get_method
    from autopeft.modeling import build_model

    meta = build_model(ref, num_labels=spec.num_labels, device="meta",
                       trust_remote_code=settings.trust_remote_code)
    info = ModelInfo.from_config(meta.config)
    keep = []
    for name in space.methods:
        reason = get_method(name).check(meta, info)
        if reason:
            say(f"note: method '{name}' does not apply to {settings.model} ({reason}); "
                "excluded from this search")
        else:
            keep.append(name)
    if not keep:
        raise AutopeftError(f"no method of search space '{space.name}' applies to {settings.model}")
    return space.restrict(keep) if len(keep) < len(space.methods) else space


def _profile(settings: SearchSettings, say: Callable[[str], None]) -> Any:
    """The hardware profile trials are planned for (None with ``--profile none``)."""
    from autopeft.hardware import resolve_profile
    from autopeft.precision import profile_dtype

    if settings.profile == "none":
        return None
    profile, detection = resolve_profile(settings.profile)
    # Refuses --precision bf16/fp16 for a CPU profile before anything is stored: its trials
    # would train in fp32 while the study recorded 16 bits.
    profile_dtype(settings.precision, profile)
    how = "detected" if detection is not None else "as asked"
    if detection is not None and detection.reason:
        how += f"; {detection.reason}"
    say(f"profile {profile.name} ({how}): {profile.trial_budget_bytes() / 2**30:.1f} GiB per "
        "trial; configurations predicted not to fit are never trained")
    return profile


def _resources(settings: SearchSettings, hardware: dict) -> dict[str, float]:
    cpus = os.cpu_count() or 1
    per_trial = settings.cpus_per_trial or max(1, cpus // settings.concurrency)
    res: dict[str, float] = {"cpu": per_trial}
    if hardware["gpus"]:
        res["gpu"] = 1
    return res


def run_search(settings: SearchSettings, say: Callable[[str], None] | None = None) -> str:
    """Run (or continue) a search; returns the study name. Raises AutopeftError on bad input.

    A study that exists already is continued when the task, model and space agree (the
    same command run again, or ``--resume``); otherwise it is refused.
    """
    from autopeft.controller import resume
    from autopeft.hardware.nvml import hardware_summary
    from autopeft.modeling import load_tokenizer, resolve_model
    from autopeft.runner.data import tokenize_task
    from autopeft.space import load_space
    from autopeft.store import Store
    from autopeft.tasks import get_task, load_task

    say = say or (lambda line: print(line, flush=True))
    spec = get_task(settings.task)
    space = load_space(settings.space)
    store = Store(settings.storage)
    name = settings.study or make_study_name(settings.task, settings.model)
    existing = store.get_study(name)
    if settings.resume and existing is None:
        raise AutopeftError(f"no study named '{name}' to resume in {store.safe_url}; "
                            "`autopeft studies` lists them")
    ref = resolve_model(settings.model, trust_remote_code=settings.trust_remote_code)
    if not ref.has_weights:
        raise AutopeftError(f"model folder '{settings.model}' holds a config only (no weights): "
                            "use `autopeft estimate` for it, or give a folder with weights")
    space = _applicable_space(space, ref, spec, settings, say)
    if existing is not None:
        resume.check_compatible(existing, task=spec.name, model=settings.model,
                                model_path=ref.path, space=space.to_dict())
        resume.check_not_running_elsewhere(existing)
    tokenizer = load_tokenizer(ref, trust_remote_code=settings.trust_remote_code)
    t0 = time.perf_counter()
    task_data = load_task(spec, data_dir=settings.data_dir, train_samples=settings.train_samples,
                          eval_samples=settings.eval_samples, seed=settings.seed)
    data = tokenize_task(task_data, tokenizer, is_seq2seq=ref.is_seq2seq,
                         max_length=settings.max_length)
    say(f"task {spec.name}: {len(data.train)} train / {len(data.eval)} eval examples from "
        f"{data.source}, tokenised once in {time.perf_counter() - t0:.1f}s")
    profile = _profile(settings, say)
    hardware = {**hardware_summary(), "profile": profile.to_dict() if profile else None}
    if profile is None and not hardware["gpus"] and not settings.ray_address:
        from autopeft.precision import training_dtype

        training_dtype(settings.precision, "cpu", bf16=False)  # no GPU here: 16 bits refused
    resources = _resources(settings, hardware)
    from autopeft.controller.ray_env import init_ray

    ray = init_ray(settings.ray_address)  # last check before anything is written
    warning = store.concurrency_warning(exclude=name)
    if warning:
        say(f"warning: {warning}")
    artifacts = (Path(existing.settings["artifacts_dir"]) if existing is not None
                 and (existing.settings or {}).get("artifacts_dir")
                 else artifacts_root(settings, name))
    if existing is None:
        objectives = [(spec.primary_metric, "maximize"), ("trainable_params", "minimize"),
                      ("peak_memory_bytes", "minimize")]
        store_settings = settings.to_stored()
        store_settings.update(resources=resources, data_source=data.source, model_path=ref.path,
                              artifacts_dir=str(artifacts),
                              **controller_identity())
        store.create_study(name, task=spec.name, model=settings.model, space_name=space.name,
                           space=space.to_dict(), budget=settings.budget.to_dict(),
                           hardware=hardware, settings=store_settings, objectives=objectives)
        remaining = settings.budget.trials
        say(f"study {name} in {store.safe_url}: {remaining} trials over "
            f"{', '.join(space.methods)}; {resources} per trial")
    else:
        store.update_study_settings(name, controller_identity(), status=StudyStatus.RUNNING)
        rec = resume.recover(store, name, resume.optuna_study_name(name), space)
        done = resume.finished_count(store, name)
        remaining = settings.budget.trials - done
        say(f"resuming study {name} in {store.safe_url}: {done} trials done"
            + (f", {len(rec.interrupted)} interrupted (queued again: "
               f"{', '.join(map(str, rec.interrupted))})" if rec.interrupted else "")
            + (f", {len(rec.recovered)} recovered" if rec.recovered else "")
            + f"; {max(remaining, 0)} to run")
        if remaining <= 0:
            store.set_study_status(name, StudyStatus.FINISHED, finished=True)
            if not settings.ray_address:
                ray.shutdown()
            return name
    try:
        from autopeft.controller.tuning import tune_study

        tune_study(store=store, name=name, settings=settings, space=space, data=data,
                   resources=resources, model_path=ref.path, num_samples=remaining,
                   artifacts=str(artifacts), profile=profile, model_config=ref.config,
                   say=say, cover_methods=settings.cover_methods and existing is None)
    except KeyboardInterrupt:
        store.set_study_status(name, StudyStatus.INTERRUPTED, finished=True)
        raise
    except BaseException:
        store.set_study_status(name, StudyStatus.FAILED, finished=True)
        raise
    store.set_study_status(name, StudyStatus.FINISHED, finished=True)
    return name
