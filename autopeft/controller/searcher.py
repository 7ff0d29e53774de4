"""Optuna samplers and the Ray Tune searcher that drives them.

``OptunaSearch`` tells Optuna a trial COMPLETE whenever the reported dict exists, even when
our trial failed and reported no objective values (Optuna then rejects the values and the
trial is left RUNNING). The subclass below tells Optuna FAIL for every trial whose status is
not ``completed`` (samplers ignore FAILED trials), and hands each trial its Optuna number
so our rows and Optuna's share one numbering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from autopeft.controller.feasibility import planning_failure
from autopeft.errors import AutopeftError

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "nsga2", "random")
NUMBER_KEY = "_trial_number"
GRAD_ACCUM_KEY = "_grad_accum"
GPU_KEY = "_gpu"
PREDICTED_KEY = "_predicted_peak"
PRIVATE_KEYS = (NUMBER_KEY, GRAD_ACCUM_KEY, GPU_KEY, PREDICTED_KEY)
# Stop a search whose space keeps producing configurations that cannot fit the profile.
MAX_INFEASIBLE_IN_A_ROW = 25
# Re-sample a configuration that already ran this many times at most, then accept it (a
# space with few distinct points may have no new one left).
MAX_DUPLICATE_RETRIES = 10


def _quiet_optuna() -> None:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def make_sampler(name: str, seed: int | None) -> Any:
    import optuna

    _quiet_optuna()
    if name == "tpe":
        # Optuna 5's multi-objective default: multivariate TPE with constant liar
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=4
        )
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise AutopeftError(f"unknown sampler '{name}'; choose one of {', '.join(SAMPLERS)}")


def make_searcher(space_fn: Any, *, metrics: list[str], modes: list[str], sampler: Any,
                  storage: Any, study_name: str,
                  planner: Callable[[dict], Any] | None = None,
                  on_infeasible: Callable[[int | None, dict | None, Any], None] | None = None,
                  first: list[dict] | None = None) -> Any:
    """An ``OptunaSearch`` whose Optuna study lives in our database (``storage``, an
    Optuna storage from ``Store.optuna_storage()``).

    With ``planner`` (config -> :class:`~autopeft.controller.feasibility.Plan`) every sampled
    configuration is checked before it is launched: one that cannot fit is handed to
    ``on_infeasible`` (which stores it), told to Optuna as an infeasible (constraint > 0)
    pruned trial, and another configuration is sampled in its place. A configuration whose
    planning raises goes the same way, its plan marked ``failed`` with the exception as
    reason: one broken prediction ends that configuration, never the search.
    """
    import json

    from ray.tune.search.optuna import OptunaSearch

    from autopeft.controller.resume import RESULT_ATTR
    from autopeft.controller.trainable import trial_row

    _quiet_optuna()
    from ray.tune.search import Searcher
    from ray.tune.search.optuna.optuna_search import OptunaTrialState

    SEEN_STATES = (OptunaTrialState.COMPLETE, OptunaTrialState.PRUNED,
                   OptunaTrialState.RUNNING)

    class _Search(OptunaSearch):
        # Ray checkpoints searchers by pickling them into the experiment folder; ours holds
        # the storage URL (maybe with a password) and needs no checkpoint: the Optuna study
        # in the database is what a resume continues from (controller/resume.py).
        def save(self, checkpoint_path: str) -> None:
            return None

        def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
            return None

        def __getstate__(self) -> dict:
            # Tune also pickles the searcher into tuner.pkl; drop the study and storage
            # (their URL may carry a password) from that copy
            return {**self.__dict__, "_ot_study": None, "_storage": None}

        def _duplicate(self, ot_trial: Any) -> bool:
            """The same configuration ran already (or runs): TPE can re-propose a point."""
            key = json.dumps(ot_trial.params, sort_keys=True)
            for t in self._ot_study.get_trials(deepcopy=False, states=SEEN_STATES):
                if t.number != ot_trial.number and json.dumps(t.params, sort_keys=True) == key:
                    return True
            return False

        def suggest(self, trial_id: str) -> dict | str | None:
            retries = 0
            for _ in range(MAX_INFEASIBLE_IN_A_ROW + MAX_DUPLICATE_RETRIES):
                config = super().suggest(trial_id)
                if config is None:
                    return None
                ot_trial = self._ot_trials[trial_id]
                if retries < MAX_DUPLICATE_RETRIES and self._duplicate(ot_trial):
                    # FAIL: samplers ignore it, and no row is stored for a config not run
                    retries += 1
                    self._ot_study.tell(ot_trial, state=OptunaTrialState.FAIL)
                    del self._ot_trials[trial_id]
                    continue
                config[NUMBER_KEY] = ot_trial.number
                try:
                    plan = planner(config) if planner else None
                except Exception as exc:  # noqa: BLE001 - it ends this configuration only
                    log.debug("planning trial %s failed", ot_trial.number, exc_info=True)
                    plan = planning_failure(exc)
                if plan is None:
                    return config
                # constraint <= 0: feasible; Optuna's samplers steer away from > 0
                ot_trial.set_constraint("memory", plan.violation())
                if plan.fits:
                    config.update({GRAD_ACCUM_KEY: plan.grad_accum, GPU_KEY: plan.gpu_fraction,
                                   PREDICTED_KEY: plan.predicted_bytes})
                    return config
                on_infeasible(ot_trial.number, config, plan)
                self._ot_study.tell(ot_trial, state=OptunaTrialState.PRUNED)
                del self._ot_trials[trial_id]  # the next ask() makes a new Optuna trial
            on_infeasible(None, None, None)
            return Searcher.FINISHED

        def on_trial_complete(self, trial_id: str, result: dict | None = None,
                              error: bool = False) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return super().on_trial_complete(trial_id, result, error)
            if result and "status" in result:
                # kept with Optuna's trial so a resume can restore our row if the driver
                # dies between Optuna's tell and our write (see controller/resume.py)
                row = trial_row(result)
                self._ot_trials[trial_id].set_user_attr(RESULT_ATTR, json.dumps(row))
            if result and result.get("status") == "completed":
                return super().on_trial_complete(trial_id, result, error)
            # "running": the last report of a trial an early-stopping scheduler stopped
            status = (result or {}).get("status")
            state = OptunaTrialState.PRUNED if status == "running" else OptunaTrialState.FAIL
            if status == "oom":  # infeasible after all: tell the sampler, as for predictions
                self._ot_trials[trial_id].set_constraint("memory", 1.0)
                state = OptunaTrialState.PRUNED
            self._ot_study.tell(self._ot_trials[trial_id], state=state)
            self._completed_trials.add(trial_id)

    # ``first``: partial configurations Optuna runs before sampling (enqueued trials); the
    # parameters they leave out are sampled as usual
    return _Search(space=space_fn, metric=metrics, mode=modes, sampler=sampler,
                   storage=storage, study_name=study_name, points_to_evaluate=first or None)
