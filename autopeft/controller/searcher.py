"""Optuna samplers, and the Ray Tune searcher that asks and tells an Optuna study.

:class:`StudySearcher` is our own :class:`ray.tune.search.Searcher` on Optuna's public
ask-and-tell interface (``study.ask``, ``study.tell``, ``enqueue_trial``, ``set_user_attr``,
``set_constraint``), so no private attribute of Ray or Optuna is read. Ray decides where and
when trials run; this class decides what they try:

* every sampled configuration is planned against the hardware profile before it is launched;
  one that cannot fit is stored as ``infeasible``, one whose planning raises as ``failed``
  (Optuna: PRUNED with a memory constraint > 0, either way), and another is sampled instead;
* a configuration that already ran in the study is not run again: Optuna is told PRUNED
  (user attribute ``duplicate_of``), so samplers move away from it; when a finite space has
  no configuration left the search says so and stops;
* a trial's Optuna number is its number in our table, and each finished trial's stored row
  travels with Optuna's trial (``RESULT_ATTR``), so a resume can restore a row that the
  driver died before writing (:mod:`autopeft.controller.resume`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from autopeft.controller.ray_env import ray_environment
from autopeft.controller.stopping import store_writes
from autopeft.errors import AutopeftError
from autopeft.settings import SAMPLERS
from autopeft.status import RESULT_ATTR, TrialStatus, trial_row

ray_environment()  # before ray is imported: this module is imported only to run a search

from ray.tune.search import Searcher  # noqa: E402

NUMBER_KEY = "_trial_number"
GRAD_ACCUM_KEY = "_grad_accum"
GPU_KEY = "_gpu"
PREDICTED_KEY = "_predicted_peak"
SEED_KEY = "_seed"  # a confirmation repeat's seed
CONFIRMS_KEY = "_confirms"  # ... and the trial it repeats
PRIVATE_KEYS = (NUMBER_KEY, GRAD_ACCUM_KEY, GPU_KEY, PREDICTED_KEY, SEED_KEY, CONFIRMS_KEY)
# Optuna user attributes of a repeat (set when it is enqueued): the trial it repeats, its seed.
CONFIRMS_ATTR = "confirms"
SEED_ATTR = "seed"
DUPLICATE_ATTR = "duplicate_of"
# Stop a search whose space keeps producing configurations that cannot fit the profile.
MAX_INFEASIBLE_IN_A_ROW = 25
# After this many proposals in a row that already ran, a finite space's next configuration
# is picked among those not run yet (the sampler may have converged on a few points).
MAX_DUPLICATES_IN_A_ROW = 10


def _quiet_optuna() -> None:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def make_sampler(name: str, seed: int | None) -> Any:
    import optuna

    _quiet_optuna()
    if name == "tpe":
        # Optuna 5's multi-objective default: multivariate TPE with constant liar. Kept as
        # autopeft's default on the evidence of scripts/bench_search.py (README, "How good is
        # the search"): on the frozen MiniLM table it needed a median 14 trials to 95% of the
        # hypervolume against random's 21, ahead of Optuna's default TPE (20), NSGA-II (21,
        # identical to random there), 10 startup trials (21) and --cover-methods (22), so
        # 4 startup trials stay and cover_methods stays off.
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=4
        )
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise AutopeftError(f"unknown sampler '{name}'; choose one of {', '.join(SAMPLERS)}")


def open_study(storage: Any, study_name: str, sampler: Any, metrics: Sequence[str],
               modes: Sequence[str]) -> Any:
    """The study's Optuna study in our database (created on first use)."""
    import optuna

    _quiet_optuna()
    study = optuna.create_study(
        storage=storage, study_name=study_name, sampler=sampler, load_if_exists=True,
        directions=["maximize" if m == "max" else "minimize" for m in modes],
    )
    if study.metric_names is None:
        study.set_metric_names(list(metrics))  # shown by optuna-dashboard
    return study


def config_key(params: dict[str, Any]) -> str:
    """Identity of a configuration: its Optuna params, canonically serialised."""
    return json.dumps(params, sort_keys=True, default=str)


def _ran(trial: Any) -> bool:
    """A trial whose configuration counts as run (interrupted ones are queued again)."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.RUNNING):
        return True
    if trial.state == TrialState.PRUNED:
        return DUPLICATE_ATTR not in trial.user_attrs
    if trial.state == TrialState.FAIL:
        row = json.loads(trial.user_attrs.get(RESULT_ATTR, "{}"))
        return row.get("status") not in (None, TrialStatus.INTERRUPTED)
    return False


class StudySearcher(Searcher):
    """A Ray Tune searcher that asks and tells ``study`` (from :func:`open_study`).

    Args:
        space: The loaded search space.
        study: The Optuna study (in our database).
        metrics: Result keys of the objective values, in the study's direction order.
        seed: Seed of the pick among configurations not run yet (finite spaces).
        planner: config -> :class:`~autopeft.controller.feasibility.Plan`, or None.
        on_infeasible: Stores a configuration the planner refused: (number, config, plan).
        on_plan_error: Stores a configuration whose planning raised: (number, config, error).
        on_stop: Told why the searcher stops early (space used up, nothing fits).
        first: Partial configurations run before sampling (``enqueue_trial``): the
            parameters they leave out are sampled as usual.
    """

    def __init__(self, space: Any, *, study: Any, metrics: Sequence[str], seed: int = 0,
                 planner: Callable[[dict], Any] | None = None,
                 on_infeasible: Callable[[int, dict, Any], None] | None = None,
                 on_plan_error: Callable[[int, dict, BaseException], None] | None = None,
                 on_stop: Callable[[str], None] | None = None,
                 first: list[dict] | None = None) -> None:
        super().__init__()  # metric and mode are ours: several objectives
        from autopeft.space import count_configurations, define_by_run

        self.study = study
        self.space = space
        self.metrics = list(metrics)
        self.seed = seed
        self.planner = planner
        self.on_infeasible = on_infeasible
        self.on_plan_error = on_plan_error
        self.on_stop = on_stop
        self.define = define_by_run(space)
        self.size = count_configurations(space)
        self.live: dict[str, Any] = {}
        self.ran = {config_key(t.params) for t in study.get_trials(deepcopy=False) if _ran(t)}
        for params in first or []:
            study.enqueue_trial(params)

    # Tune checkpoints searchers by pickling them into the experiment folder; ours needs none
    # (the Optuna study in the database is what a resume continues from), and its study holds
    # the storage URL, which may carry a password.
    def save(self, checkpoint_path: str) -> None:
        return None

    def restore(self, checkpoint_path: str) -> None:
        return None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "study": None}

    def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
        return True  # the space and objectives are ours already

    def unfinished(self) -> dict[str, Any]:
        """Optuna trials handed to Tune that have not been told yet, by Tune trial id."""
        return dict(self.live)

    def _stop(self, why: str) -> str:
        if self.on_stop:
            self.on_stop(why)
        return Searcher.FINISHED

    def _pick_unused(self) -> None:
        import random

        from autopeft.space import configurations

        unused = [c for c in configurations(self.space) if config_key(c) not in self.ran]
        if unused:
            self.study.enqueue_trial(random.Random(self.seed + len(self.ran)).choice(unused))

    @store_writes()
    def suggest(self, trial_id: str) -> dict | str | None:
        from optuna.trial import TrialState

        infeasible = duplicates = 0
        while True:
            if self.size is not None and len(self.ran) >= self.size:
                return self._stop(f"the search space is used up: all {self.size} "
                                  "configurations ran")
            if infeasible >= MAX_INFEASIBLE_IN_A_ROW:
                return self._stop(f"{MAX_INFEASIBLE_IN_A_ROW} sampled configurations in a row "
                                  "do not fit the profile; shrink the space or pick a larger "
                                  "profile")
            ot = self.study.ask()
            constants = self.define(ot)  # suggests the params: read ot.params after it
            config = {**ot.params, **constants}
            key = config_key(ot.params)
            if key in self.ran:
                ot.set_user_attr(DUPLICATE_ATTR, True)
                self.study.tell(ot, state=TrialState.PRUNED)
                duplicates += 1
                if self.size is not None and duplicates >= MAX_DUPLICATES_IN_A_ROW:
                    self._pick_unused()
                    duplicates = 0
                continue
            self.ran.add(key)
            config[NUMBER_KEY] = ot.number
            if self.planner is None:
                self.live[trial_id] = ot
                return config
            try:
                plan = self.planner(config)
            except Exception as exc:  # noqa: BLE001 - one configuration ends, not the search
                # as for an OOM: pruned with a violated constraint, so the sampler steers
                # away instead of retrying the method (samplers ignore FAIL)
                ot.set_constraint("memory", 1.0)
                self._tell_stored(ot, TrialState.PRUNED, self.on_plan_error, config, exc)
                continue
            # constraint <= 0: feasible; Optuna's samplers steer away from > 0
            ot.set_constraint("memory", plan.violation())
            if plan.fits:
                config.update({GRAD_ACCUM_KEY: plan.grad_accum, GPU_KEY: plan.gpu_fraction,
                               PREDICTED_KEY: plan.predicted_bytes})
                self.live[trial_id] = ot
                return config
            self._tell_stored(ot, TrialState.PRUNED, self.on_infeasible, config, plan)
            infeasible += 1

    def _tell_stored(self, ot: Any, state: Any, store: Callable | None, config: dict,
                     why: Any) -> None:
        if store:
            store(ot.number, config, why)
        self.study.tell(ot, state=state)

    @store_writes()
    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        from optuna.trial import TrialState

        ot = self.live.pop(trial_id, None)
        if ot is None:
            return
        result = result or {}
        status = result.get("status")
        if status is not None:
            ot.set_user_attr(RESULT_ATTR, json.dumps(trial_row(result)))
        if status == TrialStatus.COMPLETED:
            self.study.tell(ot, [result[m] for m in self.metrics])
        elif status == TrialStatus.RUNNING:  # the last report of an early-stopped trial
            self.study.tell(ot, state=TrialState.PRUNED)
        elif status == TrialStatus.OOM:  # infeasible after all: tell the sampler
            ot.set_constraint("memory", 1.0)
            self.study.tell(ot, state=TrialState.PRUNED)
        else:
            self.study.tell(ot, state=TrialState.FAIL)


def link_extra(config: dict[str, Any]) -> dict[str, Any]:
    """The stored ``extra`` that links a repeat to the trial it repeats ({} otherwise)."""
    if config.get(CONFIRMS_KEY) is None:
        return {}
    return {"confirms": int(config[CONFIRMS_KEY]), "seed": int(config[SEED_KEY])}


class RepeatSearcher(StudySearcher):
    """Hands Tune fixed configurations to run again with other seeds (``autopeft confirm``).

    Each repeat is an Optuna trial of the same study, enqueued with the original's params
    and the user attributes ``confirms`` (the original's number) and ``seed``, so its number
    is its number in our table, memory planning and the store callback treat it like any
    trial, and a resume finds it. It never counts as a new configuration (its params are
    the original's, already run) and the sampler learns from its values like any trial's.

    Args:
        jobs: ``(original number, seed, original's Optuna params)`` to run, in order.
        Other arguments: as :class:`StudySearcher`.
    """

    def __init__(self, space: Any, *, jobs: Sequence[tuple[int, int, dict]], **kwargs: Any):
        super().__init__(space, **kwargs)
        self.jobs = list(jobs)
        self.requeue: list[dict] = []

    def suggest(self, trial_id: str) -> dict | str | None:
        from optuna.trial import TrialState

        while self.jobs:
            original, seed, params = self.jobs.pop(0)
            self.study.enqueue_trial(params, user_attrs={CONFIRMS_ATTR: original,
                                                         SEED_ATTR: seed})
            while True:
                ot = self.study.ask()  # the oldest waiting trial: ours, unless older ones wait
                constants = self.define(ot)
                attrs = ot.user_attrs
                if (attrs.get(CONFIRMS_ATTR), attrs.get(SEED_ATTR)) == (original, seed):
                    break
                # Waiting since an earlier run: a search trial queued again by a resume
                # (queued again when confirmation ends) or a stale repeat (planned anew).
                if CONFIRMS_ATTR not in attrs:
                    self.requeue.append(dict(ot.params))
                self.study.tell(ot, state=TrialState.FAIL)
            config = {**ot.params, **constants, NUMBER_KEY: ot.number, SEED_KEY: seed,
                      CONFIRMS_KEY: original}
            if self.planner is None:
                self.live[trial_id] = ot
                return config
            try:
                plan = self.planner(config)
            except Exception as exc:  # noqa: BLE001 - one repeat ends, not the confirmation
                self._tell_stored(ot, TrialState.FAIL, self.on_plan_error, config, exc)
                continue
            if plan.fits:
                config.update({GRAD_ACCUM_KEY: plan.grad_accum, GPU_KEY: plan.gpu_fraction,
                               PREDICTED_KEY: plan.predicted_bytes})
                self.live[trial_id] = ot
                return config
            self._tell_stored(ot, TrialState.FAIL, self.on_infeasible, config, plan)
        return Searcher.FINISHED

    def requeue_waiting(self) -> None:
        """Queue again the search trials this searcher had to take out of Optuna's queue."""
        for params in self.requeue:
            self.study.enqueue_trial(params, skip_if_exists=False)
        self.requeue.clear()
