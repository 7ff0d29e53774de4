"""Continuing a study: compatibility checks and recovery after the controller died.

Our rows are written by the driver when a trial ends, and Optuna's study lives in the same
database. After a crash (``kill -9`` included) the Optuna study can hold trials that were
RUNNING (never finished) or finished without our row (the driver died between Optuna's
``tell`` and our write). On resume, running trials become ``interrupted`` rows and their
configurations are queued again; finished ones get their row back from the result the
searcher kept as an Optuna user attribute.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.status import (
    RESULT_ATTR,
    StudyStatus,
    TrialStatus,
    confirms,
    controller_alive,
)


@dataclass
class Recovery:
    interrupted: list[int]
    recovered: list[int]


def optuna_study_name(name: str) -> str:
    """The Optuna study behind our study ``name`` (same database)."""
    return f"autopeft:{name}"


def _space_key(space: dict) -> dict:
    return {k: v for k, v in space.items() if k != "source"}


def check_compatible(study: Any, *, task: str, model: str, model_path: str, space: dict,
                     settings: dict[str, Any] | None = None) -> None:
    """Refuse to mix a study with a run whose trials would not be comparable with its own.

    Args:
        study: The stored study.
        task, model, model_path, space: What this run asks for.
        settings: This run's result-changing settings
            (:meth:`~autopeft.settings.SearchSettings.result_settings`), compared with the
            values stored with the study (its settings and budget); a setting the study did not
            store (an older study) is not compared.
    """
    from autopeft.options import flag_name

    stored_path = (study.settings or {}).get("model_path")
    same_model = stored_path == model_path if stored_path else study.model == model
    problems = []
    if study.task != task:
        problems.append(f"task {study.task} (asked: {task})")
    if not same_model:
        problems.append(f"model {study.model} (asked: {model})")
    if _space_key(study.space) != _space_key(space):
        problems.append(f"search space '{study.space_name}' (asked: '{space.get('name')}' "
                        "with other contents)")
    stored = {**(study.budget or {}), **(study.settings or {})}
    for key, asked in (settings or {}).items():
        if key in stored and stored[key] != asked:
            problems.append(f"{flag_name(key)} {stored[key]} (asked: {asked})")
    if problems:
        raise AutopeftError(
            f"study '{study.name}' was run with {'; '.join(problems)}: its trials would not be "
            "comparable, so it cannot be continued with other settings; give the same values, "
            "or choose another --study name"
        )


def check_not_running_elsewhere(study: Any) -> None:
    """Refuse to resume a study whose controller is still alive on this host."""
    if study.status != StudyStatus.RUNNING:
        return
    pid = (study.settings or {}).get("controller_pid")
    if pid != os.getpid() and controller_alive(study.settings):
        raise AutopeftError(
            f"study '{study.name}' is being run by process {pid} on this host; wait for it "
            f"or stop it before resuming"
        )


def recover(store: Any, name: str, optuna_study_name: str, space: Any) -> Recovery:
    """Reconcile the Optuna study with our rows after an interrupted run."""
    import json

    import optuna
    from optuna.trial import TrialState

    from autopeft.space import decode_config

    storage = store.optuna_storage()
    try:
        study = optuna.load_study(study_name=optuna_study_name, storage=storage)
    except KeyError:  # the controller died before Optuna's study was created
        return Recovery([], [])
    stored = {t.number for t in store.trials(name)}
    out = Recovery([], [])
    for trial in study.get_trials(deepcopy=False):
        if trial.number in stored:
            continue
        repeat = trial.user_attrs.get("confirms")
        if trial.state == TrialState.RUNNING and repeat is not None:
            # a confirmation repeat: `autopeft confirm` plans the missing seeds anew
            try:
                cfg = decode_config(space, trial.params)
                method, params, lr = cfg.method, cfg.params, cfg.learning_rate
            except AutopeftError:  # killed before its fixed params were set
                method, params, lr = trial.params.get("method", "?"), {}, None
            store.add_trial(
                name, number=trial.number, method=method, params=params,
                learning_rate=lr, status=TrialStatus.INTERRUPTED,
                reason="the controller stopped while this repeat ran; confirming again runs "
                       "its seed again", started_at=trial.datetime_start,
                extra={"confirms": int(repeat), "seed": int(trial.user_attrs.get("seed", -1))})
            study.tell(trial.number, state=TrialState.FAIL)
            out.interrupted.append(trial.number)
        elif trial.state == TrialState.RUNNING:
            stopped = "the search controller stopped while this trial "
            try:
                cfg = decode_config(space, trial.params)
                method, params, lr = cfg.method, cfg.params, cfg.learning_rate
                reason = stopped + "ran; its configuration was queued to run again"
            except AutopeftError:  # killed while the config was being sampled
                method, params, lr = trial.params.get("method", "?"), {}, None
                reason = stopped + "was being sampled; " + (
                    "its method was queued again, the rest is sampled anew"
                    if "method" in trial.params else
                    "it had no configuration yet, so nothing is run again")
            store.add_trial(
                name, number=trial.number, method=method, params=params, learning_rate=lr,
                status=TrialStatus.INTERRUPTED, reason=reason, started_at=trial.datetime_start,
            )
            study.tell(trial.number, state=TrialState.FAIL)
            if "method" in trial.params:
                study.enqueue_trial(trial.params, skip_if_exists=False)
            out.interrupted.append(trial.number)
        elif trial.state.is_finished() and RESULT_ATTR in trial.user_attrs:
            row = json.loads(trial.user_attrs[RESULT_ATTR])
            store.add_trial(name, number=trial.number, **row)
            out.recovered.append(trial.number)
    return out


def finished_count(store: Any, name: str) -> int:
    """Trials that used up budget: every stored trial except interrupted ones and the
    repeats of ``autopeft confirm`` (they try no new configuration)."""
    return sum(1 for t in store.trials(name)
               if TrialStatus(t.status).used_budget and confirms(t.extra) is None)
