"""Confirmation repeats without Ray: the RepeatSearcher's numbering and links, its handling
of trials left waiting by earlier runs, and that repeats use no search budget."""

from __future__ import annotations

import optuna
import pytest

from autopeft.controller.resume import finished_count
from autopeft.controller.searcher import (
    CONFIRMS_KEY,
    NUMBER_KEY,
    SEED_KEY,
    RepeatSearcher,
    StudySearcher,
    link_extra,
    make_sampler,
    open_study,
)
from autopeft.space import space_from_dict
from autopeft.store import Store

METRICS = ["accuracy", "trainable_params", "peak_memory"]
DONE = {"status": "completed", "accuracy": 0.5, "trainable_params": 1, "peak_memory": 1}
SPACE = space_from_dict({"name": "grid", "methods": {
    "bitfit": {"learning_rate": {"choices": [1e-3, 2e-3, 3e-3]}}}})


@pytest.fixture
def study(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/o.db")
    return open_study(storage, "s", make_sampler("random", 0), METRICS, ["max", "min", "min"])


def test_repeats_are_linked_trials_that_add_no_configuration(study):
    search = StudySearcher(SPACE, study=study, metrics=METRICS)
    first = search.suggest("a")
    search.on_trial_complete("a", DONE)
    params = study.trials[0].params
    # a search trial queued again by a resume waits in Optuna's queue before the repeats
    study.enqueue_trial({"bitfit.learning_rate": 3e-3, "method": "bitfit"})
    repeats = RepeatSearcher(SPACE, study=study, metrics=METRICS,
                             jobs=[(0, 1, params), (0, 2, params)])
    ran_before = set(repeats.ran)
    configs = []
    for i in range(3):
        config = repeats.suggest(f"r{i}")
        if config == repeats.FINISHED:
            break
        configs.append(config)
        repeats.on_trial_complete(f"r{i}", DONE)
    assert len(configs) == 2
    for config, seed in zip(configs, (1, 2), strict=True):
        assert config["bitfit.learning_rate"] == first["bitfit.learning_rate"]
        assert (config[CONFIRMS_KEY], config[SEED_KEY]) == (0, seed)
        assert link_extra(config) == {"confirms": 0, "seed": seed}
        trial = study.trials[config[NUMBER_KEY]]
        assert trial.user_attrs == {"confirms": 0, "seed": seed, **{
            k: v for k, v in trial.user_attrs.items() if k not in ("confirms", "seed")}}
        assert trial.state.name == "COMPLETE"
    assert repeats.ran == ran_before  # no new configuration
    # the search trial that waited was taken out of the queue and is queued again
    assert repeats.requeue == [{"method": "bitfit", "bitfit.learning_rate": 3e-3}]
    repeats.requeue_waiting()
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert len(waiting) == 1
    assert link_extra({NUMBER_KEY: 0}) == {}


def test_repeats_use_no_search_budget(tmp_path):
    with Store(f"sqlite:///{tmp_path}/s.db") as store:
        store.create_study("b", task="glue/sst2", model="m", space_name="s", space={},
                           budget={}, hardware={}, settings={},
                           objectives=[("accuracy", "maximize")])
        common = dict(method="bitfit", params={}, learning_rate=1e-3)
        store.add_trial("b", number=0, status="completed", **common)
        store.add_trial("b", number=1, status="failed", **common)
        store.add_trial("b", number=2, status="interrupted", **common)
        store.add_trial("b", number=3, status="completed", extra={"confirms": 0, "seed": 1},
                        **common)
        store.add_trial("b", number=4, status="oom", extra={"confirms": 0, "seed": 2},
                        **common)
        assert finished_count(store, "b") == 2
