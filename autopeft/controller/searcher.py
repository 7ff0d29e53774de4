"""Optuna samplers and the Ray Tune searcher that drives them.

``OptunaSearch`` tells Optuna a trial COMPLETE whenever the reported dict exists, even when
our trial failed and reported no objective values (Optuna then rejects the values and the
trial is left RUNNING). The subclass below tells Optuna FAIL for every trial whose status is
not ``completed`` (samplers ignore FAILED trials), and hands each trial its Optuna number
so our rows and Optuna's share one numbering.
"""

from __future__ import annotations

from typing import Any

from autopeft.errors import AutopeftError

SAMPLERS = ("tpe", "nsga2", "random")
NUMBER_KEY = "_trial_number"


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
                  storage_url: str, study_name: str) -> Any:
    """An ``OptunaSearch`` whose Optuna study lives in our database (``storage_url``)."""
    import json

    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from autopeft.controller.resume import RESULT_ATTR
    from autopeft.controller.trainable import trial_row

    _quiet_optuna()
    from ray.tune.search.optuna.optuna_search import OptunaTrialState

    class _Search(OptunaSearch):
        def suggest(self, trial_id: str) -> dict | None:
            config = super().suggest(trial_id)
            if config is not None:
                config[NUMBER_KEY] = self._ot_trials[trial_id].number
            return config

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
            pruned = bool(result) and result.get("status") == "running"
            state = OptunaTrialState.PRUNED if pruned else OptunaTrialState.FAIL
            self._ot_study.tell(self._ot_trials[trial_id], state=state)
            self._completed_trials.add(trial_id)

    storage = optuna.storages.RDBStorage(storage_url)
    return _Search(space=space_fn, metric=metrics, mode=modes, sampler=sampler,
                   storage=storage, study_name=study_name)
