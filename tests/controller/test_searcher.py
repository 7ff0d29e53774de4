"""The Optuna searcher without Ray: numbering, duplicates, exhaustion, plans, fault states."""

from __future__ import annotations

import optuna
import pytest

from autopeft.controller.feasibility import Plan
from autopeft.controller.searcher import (
    NUMBER_KEY,
    StudySearcher,
    make_sampler,
    open_study,
)
from autopeft.space import count_configurations, space_from_dict

METRICS = ["accuracy", "trainable_params", "peak_memory"]
DONE = {"status": "completed", "accuracy": 0.5, "trainable_params": 1, "peak_memory": 1}
RESIDUE = (optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING,
           optuna.trial.TrialState.WAITING)


@pytest.fixture
def storage(tmp_path):
    return optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/o.db")


def _searcher(storage, space, seed=0, name="s", sampler="random", **kw):
    study = open_study(storage, name, make_sampler(sampler, seed), METRICS, ["max", "min", "min"])
    stops = []
    search = StudySearcher(space, study=study, metrics=METRICS, seed=seed,
                           on_stop=stops.append, **kw)
    return search, study, stops


def grid_space(values=(1e-3, 2e-3, 3e-3)):
    return space_from_dict({"name": "grid", "methods": {
        "bitfit": {"learning_rate": {"choices": list(values)}}}})


@pytest.mark.parametrize("sampler", ["random", "tpe"])
@pytest.mark.parametrize("seed", range(4))
def test_a_used_up_space_ends_the_search_without_retraining(storage, seed, sampler):
    grid = [1e-3, 2e-3, 3e-3]
    search, study, stops = _searcher(storage, grid_space(grid), seed=seed, sampler=sampler)
    seen = []
    for i in range(5):
        config = search.suggest(f"t{i}")
        if config == search.FINISHED:
            break
        seen.append(config["bitfit.learning_rate"])
        search.on_trial_complete(f"t{i}", DONE)
    assert sorted(seen) == grid  # each configuration once, then the search stops
    assert stops == ["the search space is used up: all 3 configurations ran"]
    assert not [t for t in study.get_trials() if t.state in RESIDUE]
    completed = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert len(completed) == 3


def test_duplicates_are_never_returned_and_leave_no_failed_trials(storage):
    # 12 configurations, 12 suggestions: the random sampler proposes many repeats on the way
    space = space_from_dict({"name": "g", "methods": {"lora": {
        "learning_rate": {"choices": [1e-3, 2e-3, 3e-3]},
        "params": {"r": {"choices": [2, 4, 8, 16]}}}}})
    assert count_configurations(space) == 12
    search, study, stops = _searcher(storage, space, seed=3)
    keys = set()
    for i in range(12):
        config = search.suggest(f"t{i}")
        keys.add((config["lora.learning_rate"], config["lora.r"]))
        search.on_trial_complete(f"t{i}", DONE)
    assert len(keys) == 12 and not stops
    assert search.suggest("t12") == search.FINISHED
    duplicates = [t for t in study.get_trials() if "duplicate_of" in t.user_attrs]
    assert all(t.state.name == "PRUNED" for t in duplicates)
    assert not [t for t in study.get_trials() if t.state in RESIDUE]


def test_continuous_spaces_have_no_size():
    assert count_configurations(space_from_dict({"name": "c", "methods": {"lora": {}}})) is None


def test_infeasible_plans_are_handed_over_and_resampled(storage):
    space = space_from_dict({"name": "m", "methods": {"full": {}, "lora": {}}})
    refused = []

    def planner(config):
        fits = config["method"] == "lora"
        return Plan(fits, 8, 1, 10 if fits else 500, 100, 0.0,
                    reason=None if fits else "too big")

    search, study, _ = _searcher(storage, space, planner=planner,
                                 on_infeasible=lambda n, c, p: refused.append((n, c["method"])))
    configs = [search.suggest(f"t{i}") for i in range(4)]
    assert all(c["method"] == "lora" for c in configs)
    states = {t.number: t for t in study.get_trials()}
    for number, method in refused:
        assert method == "full"
        assert states[number].state == optuna.trial.TrialState.PRUNED
        assert states[number].constraints["memory"] > 0
    for c in configs:
        assert states[c[NUMBER_KEY]].constraints["memory"] <= 0


def test_a_planner_that_raises_ends_one_configuration_not_the_search(storage):
    space = space_from_dict({"name": "m", "methods": {"ia3": {}, "lora": {}}})
    failed = []

    def planner(config):
        if config["method"] == "ia3":
            raise RuntimeError("fake tensors cannot trace this")
        return Plan(True, 8, 1, 10, 100, 0.0)

    search, study, _ = _searcher(storage, space, planner=planner,
                                 on_plan_error=lambda n, c, e: failed.append((n, c, e)))
    configs = [search.suggest(f"t{i}") for i in range(6)]
    assert all(c["method"] == "lora" for c in configs)
    assert failed and all(c["method"] == "ia3" for _, c, _ in failed)
    assert all(isinstance(e, RuntimeError) for _, _, e in failed)
    by_number = {t.number: t for t in study.get_trials()}
    for n, _, _ in failed:  # not resampled forever: pruned with a violated constraint
        assert by_number[n].state.name == "PRUNED"
        assert by_number[n].constraints["memory"] > 0


def test_nothing_fits_stops_with_a_reason(storage):
    space = space_from_dict({"name": "m", "methods": {"full": {}}})
    search, _, stops = _searcher(
        storage, space, planner=lambda c: Plan(False, 1, 8, 500, 100, 0.0, reason="big"),
        on_infeasible=lambda *a: None)
    assert search.suggest("t0") == search.FINISHED
    assert "do not fit the profile" in stops[0]


def test_non_completed_statuses_reach_optuna(storage):
    space = space_from_dict({"name": "m", "methods": {"lora": {}}})
    search, study, _ = _searcher(storage, space)
    outcomes = {"failed": "FAIL", "oom": "PRUNED", "running": "PRUNED", "completed": "COMPLETE"}
    numbers = {}
    for i, status in enumerate(outcomes):
        numbers[status] = search.suggest(f"t{i}")[NUMBER_KEY]
        search.on_trial_complete(f"t{i}", {"status": status, "accuracy": 0.6,
                                           "trainable_params": 3, "peak_memory": 4})
    by_number = {t.number: t for t in study.get_trials()}
    for status, state in outcomes.items():
        assert by_number[numbers[status]].state.name == state, status
        assert "autopeft_result" in by_number[numbers[status]].user_attrs
    assert by_number[numbers["oom"]].constraints["memory"] > 0
    assert by_number[numbers["completed"]].values == [0.6, 3, 4]
    assert study.metric_names == METRICS


def test_enqueued_methods_run_first(storage):
    space = space_from_dict({"name": "m", "methods": {"ia3": {}, "lora": {}, "bitfit": {}}})
    search, _, _ = _searcher(storage, space, first=[{"method": "lora"}, {"method": "ia3"}])
    assert [search.suggest(f"t{i}")["method"] for i in range(2)] == ["lora", "ia3"]


def test_the_searcher_pickles_without_its_study(storage):
    import pickle

    search, _, _ = _searcher(storage, grid_space())
    assert pickle.loads(pickle.dumps(search)).study is None
