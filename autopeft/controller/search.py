"""``run_search``: validate everything, then drive Ray Tune + Optuna and store every trial.

The driver process alone writes to the database (a Tune callback stores each finished trial);
trials only report. Nothing is written before all input has been validated.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from autopeft.controller.preflight import preflight
from autopeft.errors import AutopeftError, excerpt
from autopeft.settings import SearchSettings
from autopeft.status import StudyStatus, controller_identity


def _resources(settings: SearchSettings, hardware: dict) -> dict[str, float]:
    cpus = os.cpu_count() or 1
    per_trial = settings.cpus_per_trial or max(1, cpus // settings.concurrency)
    res: dict[str, float] = {"cpu": per_trial}
    if hardware["gpus"]:
        res["gpu"] = 1
    return res


def check_trial_fits(resources: dict[str, float], node_cpus: list[float], where: str) -> None:
    """Refuse a trial that no node can ever hold: Ray would keep it pending forever, with the
    study left ``running`` and nothing printed.

    Args:
        resources: One trial's resources (``{"cpu": n}``).
        node_cpus: The CPUs of each node trials may run on.
        where: How to name those nodes in the error ("this machine", "the cluster at ...").
    """
    most = max(node_cpus, default=0)
    if resources["cpu"] > most:
        raise AutopeftError(
            f"--cpus-per-trial {resources['cpu']:g} can never be met: {where} has at most "
            f"{most:g} CPUs on one node; use --cpus-per-trial {max(int(most), 1)} or fewer"
        )


def run_search(settings: SearchSettings, say: Callable[[str], None] | None = None, *,
               space: Any = None, confirm_only: bool = False,
               progress: Callable[[dict[str, Any]], None] | None = None) -> str:
    """Run (or continue) a search; returns the study name. Raises AutopeftError on bad input.

    A study that exists already is continued when the task, model and space agree (the
    same command run again, or ``--resume``); otherwise it is refused. ``space`` is a loaded
    search space to use instead of ``settings.space``; with ``confirm_only`` no new
    configuration runs, only the confirmation of the front (``settings.confirm_seeds``).
    ``progress`` receives live progress messages of the running trials (see ``tune_study``).
    """
    from autopeft.controller import resume
    from autopeft.hardware.nvml import hardware_summary

    say = say or (lambda line: print(line, flush=True))
    if not settings.ray_address and settings.cpus_per_trial:  # before any slow step
        check_trial_fits({"cpu": settings.cpus_per_trial}, [os.cpu_count() or 1],
                         "this machine")
    checked = preflight(settings, say, space=space)  # every check; nothing written before it
    spec, space, store, name = checked.spec, checked.space, checked.store, checked.name
    existing, ref, data, profile = checked.existing, checked.ref, checked.data, checked.profile
    artifacts = checked.artifacts
    hardware = {**hardware_summary(), "profile": profile.to_dict() if profile else None}
    if profile is None and not hardware["gpus"] and not settings.ray_address:
        from autopeft.precision import training_dtype

        training_dtype(settings.precision, "cpu", bf16=False)  # no GPU here: 16 bits refused
    resources = _resources(settings, hardware)
    from autopeft.controller.ray_env import init_ray

    ray = init_ray(settings.ray_address)  # last check before anything is written
    try:
        check_trial_fits(resources, [n["Resources"].get("CPU", 0) for n in ray.nodes()
                                     if n.get("Alive")],
                         f"the Ray cluster at {settings.ray_address}" if settings.ray_address
                         else "the local Ray")
    except AutopeftError:
        if not settings.ray_address:
            ray.shutdown()
        raise
    warning = store.concurrency_warning(exclude=name)
    if warning:
        say(f"warning: {warning}")
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
        remaining = 0 if confirm_only else settings.budget.trials - done
        say(f"resuming study {name} in {store.safe_url}: {done} trials done"
            + (f", {len(rec.interrupted)} interrupted (queued again: "
               f"{', '.join(map(str, rec.interrupted))})" if rec.interrupted else "")
            + (f", {len(rec.recovered)} recovered" if rec.recovered else "")
            + ("; confirming the front only" if confirm_only else
               f"; {max(remaining, 0)} to run"))
        if remaining <= 0 and not settings.confirm_seeds:
            store.set_study_status(name, StudyStatus.FINISHED, finished=True)
            if not settings.ray_address:
                ray.shutdown()
            return name
    _run_trials(store, name, settings, space, ray, say, dict(
        data=data, resources=resources, model_path=ref.path, num_samples=max(remaining, 0),
        artifacts=str(artifacts), profile=profile, model_config=ref.config,
        cover_methods=settings.cover_methods and existing is None,
        confirm_seeds=settings.confirm_seeds, progress=progress))
    return name


def stored_settings(study: Any, *, storage: str | None, ray_address: str | None,
                    confirm_seeds: int) -> SearchSettings:
    """The settings a stored study was searched with, to run more of it (``confirm``)."""
    from dataclasses import fields

    from autopeft.budget import Budget

    stored = study.settings or {}
    kept = {f.name: stored[f.name] for f in fields(SearchSettings)
            if f.name in stored and f.name not in ("ray_address", "confirm_seeds")}
    budget = Budget(**{f.name: study.budget[f.name] for f in fields(Budget)
                       if f.name in (study.budget or {})})
    try:
        return SearchSettings(**{"task": study.task, "model": study.model, **kept,
                                 "study": study.name, "storage": storage,
                                 "ray_address": ray_address, "confirm_seeds": confirm_seeds,
                                 "budget": budget})
    except (TypeError, ValueError) as exc:  # a row written by another version, or by hand
        raise AutopeftError(f"study '{study.name}' stores settings this version cannot run "
                            f"again ({excerpt(str(exc))}); confirm a study `autopeft search` "
                            "wrote") from None


def run_confirm(name: str, *, seeds: int, storage: str | None = None,
                ray_address: str | None = None,
                say: Callable[[str], None] | None = None) -> None:
    """``autopeft confirm``: run each front configuration of a stored study again with
    ``seeds`` more seeds (only the seeds it lacks: run it again after an interruption).
    The study's own settings, data and search space are used; no new configuration runs."""
    from autopeft.space import space_from_dict
    from autopeft.store import Store

    study = Store(storage).require_study(name)
    settings = stored_settings(study, storage=storage, ray_address=ray_address,
                               confirm_seeds=seeds)
    run_search(replace(settings, resume=True), say=say, space=space_from_dict(study.space),
               confirm_only=True)


def _run_trials(store: Any, name: str, settings: SearchSettings, space: Any, ray: Any,
                say: Callable[[str], None], study_args: dict[str, Any]) -> None:
    """Run the study's trials and mark how it ended: ``finished``; ``interrupted`` on Ctrl-C
    or SIGTERM (the exception goes on: exit 130 for Ctrl-C); ``failed`` with a reason
    otherwise, running trials queued again in both cases. A failure
    caused by input or environment (a store refusing writes, a full disk) becomes one
    AutopeftError line; anything else keeps its traceback."""
    from autopeft.controller.stopping import close_study, failure_cause, sigint_raises

    resume_hint = f"continue it with `autopeft search ... --study {name} --resume`"
    try:
        with sigint_raises():
            from autopeft.controller.tuning import tune_study

            tune_study(store=store, name=name, settings=settings, space=space, say=say,
                       **study_args)
            store.set_study_status(name, StudyStatus.FINISHED, finished=True)
    except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C; SIGTERM (Ray's handler exits)
        why = ("interrupted by Ctrl-C (SIGINT)" if isinstance(exc, KeyboardInterrupt)
               else f"stopped by a signal or exit (SystemExit {exc.code})")
        marked = close_study(store, name, space, StudyStatus.INTERRUPTED, why, say)
        say(f"interrupted: study {name} " + ("marked interrupted" if marked else
                                             "could not be marked interrupted")
            + f"; {resume_hint}")
        raise
    except BaseException as exc:
        cause = failure_cause(exc, store.url)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        marked = close_study(store, name, space, StudyStatus.FAILED,
                             cause or f"{type(exc).__name__}: {first}", say)
        if cause is None:
            raise  # a bug: its traceback is what helps
        raise AutopeftError(
            f"search stopped: {cause}; study '{name}' "
            + ("marked failed" if marked else "could not be marked failed (still 'running')")
            + f"; {resume_hint} once that is fixed"
        ) from None
    finally:
        if not settings.ray_address:
            ray.shutdown()
