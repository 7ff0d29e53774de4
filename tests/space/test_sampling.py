"""Define-by-run sampling with Optuna (and through Ray's OptunaSearch), and decoding."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import optuna
import pytest

from autopeft.errors import AutopeftError
from autopeft.space import (
    MethodSpace,
    ParamSpec,
    SearchSpace,
    decode_config,
    define_by_run,
    load_space,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)



pytestmark = pytest.mark.usefixtures("fake_registry")


def _ask(study, space, n, objective=None):
    """``n`` ask/tell rounds; returns (raw trial params, constants, decoded config) per trial."""
    fn = define_by_run(space)
    out = []
    for _ in range(n):
        trial = study.ask()
        constants = fn(trial)
        cfg = decode_config(space, {**trial.params, **constants})
        out.append((dict(trial.params), constants, cfg))
        value = objective(cfg) if objective else 0.0
        study.tell(trial, value)
    return out


def _score(cfg):
    # A deterministic objective that depends on the config, so TPE has something to model.
    return -abs(cfg.learning_rate - 1e-3) + 0.01 * len(cfg.params) + (cfg.method == "lora")


def _tpe(seed):
    return optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    )


def test_same_seed_same_sequence():
    space = load_space("default")
    first = [cfg for _, _, cfg in _ask(_tpe(0), space, 25, _score)]
    second = [cfg for _, _, cfg in _ask(_tpe(0), space, 25, _score)]
    other = [cfg for _, _, cfg in _ask(_tpe(1), space, 25, _score)]
    assert first == second
    assert first != other


def test_order_of_keys_does_not_change_the_sequence():
    # A JSON store may reorder keys: the space read back must sample the same sequence.
    space = load_space("default")
    d = space.to_dict()
    d["methods"] = {
        k: {**v, "params": dict(reversed(list(v["params"].items())))}
        for k, v in reversed(list(d["methods"].items()))
    }
    shuffled = SearchSpace.from_dict(json.loads(json.dumps(d)))
    assert list(shuffled.methods) != list(space.methods)
    first = [cfg for _, _, cfg in _ask(_tpe(0), space, 15, _score)]
    second = [cfg for _, _, cfg in _ask(_tpe(0), shuffled, 15, _score)]
    assert first == second


def test_random_sampler_covers_methods_and_keeps_params_conditional():
    space = load_space("default")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    rows = _ask(study, space, 400)
    assert Counter(cfg.method for _, _, cfg in rows).keys() == space.methods.keys()
    for raw, constants, cfg in rows:
        m = cfg.method
        assert raw["method"] == m
        assert all(k == "method" or k.startswith(f"{m}.") for k in {**raw, **constants})
        ms = space.methods[m]
        assert set(cfg.params) == set(ms.params)
        suggested = {k for k, s in ms.params.items() if s.kind != "fixed"}
        assert set(raw) == {"method", f"{m}.learning_rate"} | {f"{m}.{p}" for p in suggested}
        assert set(constants) == {f"{m}.{p}" for p in ms.params if p not in suggested}
        lr = ms.learning_rate
        assert lr.low <= cfg.learning_rate <= lr.high
        assert isinstance(cfg.learning_rate, float)
        for p, spec in ms.params.items():
            if spec.kind in ("fixed", "categorical"):
                assert cfg.params[p] in spec.values
            elif spec.kind == "int":
                assert spec.low <= cfg.params[p] <= spec.high
                assert (cfg.params[p] - spec.low) % (spec.step or 1) == 0


def test_encoded_list_choices_round_trip():
    space = load_space("lora")
    spec = space.methods["lora"].params["target_modules"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    rows = _ask(study, space, 120)
    raw_values = {raw["lora.target_modules"] for raw, _, _ in rows}
    decoded = [cfg.params["target_modules"] for _, _, cfg in rows]
    assert raw_values == {"q+v", "q+k+v+o", "q+v+ffn_in+ffn_out", "q+k+v+o+ffn_in+ffn_out"}
    assert all(isinstance(d, list) for d in decoded)
    assert sorted(map(tuple, {tuple(d) for d in decoded})) == sorted(
        tuple(v) for v in spec.values
    )
    for raw, _, cfg in rows:
        assert "+".join(cfg.params["target_modules"]) == raw["lora.target_modules"]


def test_fixed_values_are_constants_not_suggestions():
    space = load_space("default")  # ia3.feedforward_modules is fixed to [ffn_out]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    ia3 = [(raw, c, cfg) for raw, c, cfg in _ask(study, space, 200) if cfg.method == "ia3"]
    assert ia3
    for raw, constants, cfg in ia3:
        assert "ia3.feedforward_modules" not in raw
        assert constants == {"ia3.feedforward_modules": ["ffn_out"]}
        assert cfg.params["feedforward_modules"] == ["ffn_out"]
        # Optuna's params alone (e.g. read back from its storage) decode the same way.
        assert decode_config(space, raw) == cfg


def _hand_space():
    lora = MethodSpace(
        "lora",
        ParamSpec(choices=[1e-3, 1e-4, 5e-5]),
        {"r": ParamSpec(low=4, high=16, log=True), "lora_dropout": ParamSpec(low=0.0, high=0.2,
                                                                            step=0.05),
         "layers": ParamSpec(choices=["all", [0, 1], "2-3"]), "use_dora": ParamSpec(value=False)},
    )
    return SearchSpace("hand", "", {"lora": lora, "full": MethodSpace("full")})


def test_lr_grid_ranges_and_missing_learning_rate():
    space = _hand_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    rows = _ask(study, space, 150)
    lora = [cfg for _, _, cfg in rows if cfg.method == "lora"]
    full = [cfg for _, _, cfg in rows if cfg.method == "full"]
    assert {c.learning_rate for c in lora} == {1e-3, 1e-4, 5e-5}
    assert {c.params["use_dora"] for c in lora} == {False}
    assert {json.dumps(c.params["layers"]) for c in lora} == {'"all"', "[0, 1]", '"2-3"'}
    assert all(isinstance(c.params["r"], int) and 4 <= c.params["r"] <= 16 for c in lora)
    drops = {round(c.params["lora_dropout"], 9) for c in lora}
    assert drops <= {0.0, 0.05, 0.1, 0.15, 0.2} and len(drops) > 2
    # full has no learning_rate in this hand-built space: the method's lr_range is used.
    assert full and all(1e-5 <= c.learning_rate <= 1e-4 for c in full)
    assert all(c.params == {} for c in full)


@pytest.mark.parametrize(
    ("flat", "needle"),
    [
        ({}, "method None is not in search space hand"),
        ({"method": "ia3"}, "method 'ia3' is not in search space hand"),
        ({"method": "lora", "lora.learning_rate": 1e-3, "lora.r": 8, "lora.layers": "all"},
         "lacks 'lora.lora_dropout'"),
        ({"method": "lora", "lora.learning_rate": 1e-3, "lora.r": 8, "lora.lora_dropout": 0.1,
          "lora.layers": "0+2"}, "lora.layers: '0+2' is not one of the choices"),
        ({"method": "lora", "lora.learning_rate": 1e-3, "lora.r": 32, "lora.lora_dropout": 0.1,
          "lora.layers": "all"}, "lora.r=32 is outside [4, 16]"),
        ({"method": "lora", "lora.learning_rate": 1e-3, "lora.r": 8.5, "lora.lora_dropout": 0.1,
          "lora.layers": "all"}, "lora.r=8.5 is not a int"),
        ({"method": "lora", "lora.learning_rate": 1e-3, "lora.r": 8, "lora.lora_dropout": "x",
          "lora.layers": "all"}, "lora.lora_dropout='x' is not a float"),
        ({"method": "lora", "lora.learning_rate": 2e-3, "lora.r": 8, "lora.lora_dropout": 0.1,
          "lora.layers": "all"}, "lora.learning_rate: 0.002 is not one of the choices"),
        ({"method": "lora", "lora.learning_rate": 1e-3, "lora.r": 8, "lora.lora_dropout": 0.1,
          "lora.layers": "all", "lora.use_dora": True}, "the space fixes it to False"),
        ({"method": "full", "full.learning_rate": 1e-3}, "full.learning_rate=0.001 is outside"),
    ],
)
def test_decode_errors(flat, needle):
    with pytest.raises(AutopeftError) as info:
        decode_config(_hand_space(), flat)
    assert needle in str(info.value)


def test_decode_ignores_unrelated_keys():
    flat = {"method": "lora", "lora.learning_rate": 1e-3, "lora.r": 8, "lora.lora_dropout": 0.1,
            "lora.layers": "0+1", "full.learning_rate": 5e-5, "task": "sst2"}
    cfg = decode_config(_hand_space(), flat)
    assert cfg.to_dict() == {"method": "lora", "learning_rate": 1e-3, "params": {
        "r": 8, "lora_dropout": 0.1, "layers": [0, 1], "use_dora": False}}


def test_through_ray_optuna_search():
    search = pytest.importorskip("ray.tune.search.optuna")
    space = load_space("default")
    searcher = search.OptunaSearch(
        space=define_by_run(space), metric="acc", mode="max",
        sampler=optuna.samplers.TPESampler(seed=0),
    )
    methods = set()
    for i in range(30):
        config = searcher.suggest(f"t{i}")
        cfg = decode_config(space, config)
        methods.add(cfg.method)
        if cfg.method == "ia3":
            assert config["ia3.feedforward_modules"] == ["ffn_out"]  # constants reach Ray
        searcher.on_trial_complete(f"t{i}", {"acc": _score(cfg)})
    assert len(methods) > 3


def test_importing_space_does_not_import_optuna_or_ray():
    code = "import sys, autopeft.space; print(sorted({'optuna','ray','torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_define_by_run_pickles_for_ray_checkpoints():
    import pickle

    import optuna

    from autopeft.space import define_by_run, load_space

    fn = pickle.loads(pickle.dumps(define_by_run(load_space("quick"))))
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    fn(trial)
    assert trial.params["method"] in {"lora", "ia3", "bitfit", "ln_tuning"}
