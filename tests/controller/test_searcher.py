"""The Optuna searcher without Ray: numbering, duplicates, infeasible plans, fault states."""

from __future__ import annotations

import optuna
import pytest

from autopeft.controller.feasibility import Plan
from autopeft.controller.searcher import NUMBER_KEY, make_sampler, make_searcher
from autopeft.space import define_by_run, space_from_dict


@pytest.fixture
def storage(tmp_path):
    return optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/o.db")


def _searcher(storage, space, seed=0, name="s", **kw):
    return make_searcher(define_by_run(space), metrics=["accuracy", "trainable_params",
                                                         "peak_memory"],
                         modes=["max", "min", "min"], sampler=make_sampler("random", seed),
                         storage=storage, study_name=name, **kw)


@pytest.mark.parametrize("seed", range(5))
def test_duplicates_are_resampled_until_the_space_is_exhausted(storage, seed):
    # without the check, three random draws from three values are all distinct 2 times in 9
    grid = [1e-3, 2e-3, 3e-3]
    space = space_from_dict({"name": "three", "methods": {
        "bitfit": {"learning_rate": {"choices": grid}}}})
    search = _searcher(storage, space, seed=seed, name=f"s{seed}")
    seen = []
    for i in range(4):
        config = search.suggest(f"t{i}")
        seen.append(config["bitfit.learning_rate"])
        search.on_trial_complete(f"t{i}", {"status": "completed", "accuracy": 0.5,
                                           "trainable_params": 1, "peak_memory": 1})
    assert sorted(seen[:3]) == grid  # never a configuration that already ran
    assert seen[3] in grid  # nothing new left: accepted after the retries


def test_infeasible_plans_are_handed_over_and_resampled(storage):
    space = space_from_dict({"name": "m", "methods": {"full": {}, "lora": {}}})
    refused = []

    def planner(config):
        fits = config["method"] == "lora"
        return Plan(fits, 8, 1, 10 if fits else 500, 100, 0.0,
                    reason=None if fits else "too big")

    search = _searcher(storage, space, planner=planner,
                       on_infeasible=lambda n, c, p: refused.append((n, c and c["method"])))
    configs = [search.suggest(f"t{i}") for i in range(4)]
    assert all(c["method"] == "lora" for c in configs)
    study = optuna.load_study(study_name="s", storage=storage)
    states = {t.number: t for t in study.trials}
    for number, method in refused:
        assert method == "full"
        assert states[number].state == optuna.trial.TrialState.PRUNED
        assert states[number].constraints["memory"] > 0
    for c in configs:
        assert states[c[NUMBER_KEY]].constraints["memory"] <= 0


def test_non_completed_statuses_reach_optuna(storage):
    space = space_from_dict({"name": "m", "methods": {"lora": {}}})
    search = _searcher(storage, space)
    outcomes = {"failed": "FAIL", "oom": "PRUNED", "running": "PRUNED", "completed": "COMPLETE"}
    numbers = {}
    for i, status in enumerate(outcomes):
        numbers[status] = search.suggest(f"t{i}")[NUMBER_KEY]
        search.on_trial_complete(f"t{i}", {"status": status, "accuracy": 0.6,
                                           "trainable_params": 3, "peak_memory": 4})
    study = optuna.load_study(study_name="s", storage=storage)
    by_number = {t.number: t for t in study.trials}
    for status, state in outcomes.items():
        assert by_number[numbers[status]].state.name == state, status
    assert by_number[numbers["oom"]].constraints["memory"] > 0
    assert by_number[numbers["completed"]].values == [0.6, 3, 4]


def test_a_plan_that_raises_ends_only_its_configuration(storage):
    space = space_from_dict({"name": "m", "methods": {"full": {}, "lora": {}}})
    handed = []

    def planner(config):
        if config["method"] == "full":
            raise RuntimeError("cannot hook a frozen tensor\n  second line")
        return Plan(True, 8, 1, 10, 100, 0.0)

    search = _searcher(storage, space, planner=planner,
                       on_infeasible=lambda n, c, p: handed.append((n, c, p)))
    configs = [search.suggest(f"t{i}") for i in range(4)]
    assert all(c["method"] == "lora" for c in configs)
    assert handed, "seed 0 samples full at least once in 4 tries"
    study = optuna.load_study(study_name="s", storage=storage)
    by_number = {t.number: t for t in study.trials}
    for number, config, plan in handed:
        assert config["method"] == "full" and config[NUMBER_KEY] == number
        assert plan.failed and not plan.fits
        assert plan.reason == "memory prediction failed: RuntimeError: cannot hook a frozen tensor"
        # not resampled forever: pruned with a violated constraint, like an infeasible plan
        assert by_number[number].state == optuna.trial.TrialState.PRUNED
        assert by_number[number].constraints["memory"] > 0


def test_planning_failure_reason_without_a_message():
    from autopeft.controller.feasibility import planning_failure

    assert planning_failure(KeyError()).reason == "memory prediction failed: KeyError"
    assert planning_failure(ValueError("bad: x")).reason == (
        "memory prediction failed: ValueError: bad: x")
