"""ParamSpec / MethodSpace / SearchSpace: kinds, validation and the dict round trip."""

from __future__ import annotations

import json

import pytest

from autopeft.errors import AutopeftError
from autopeft.space.schema import (
    MethodSpace,
    ParamSpec,
    SampledConfig,
    SearchSpace,
    SpaceError,
    encode_choice,
)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ({"value": 0.0}, "fixed"),
        ({"value": None}, "fixed"),
        ({"value": ["q", "v"]}, "fixed"),
        ({"choices": [4, 8]}, "categorical"),
        ({"low": 4, "high": 16}, "int"),
        ({"low": 10, "high": 50, "step": 10}, "int"),
        ({"low": 0, "high": 1, "step": 0.5}, "float"),
        ({"low": 0, "high": 0.5}, "float"),
        ({"low": 1e-4, "high": 1e-2, "log": True}, "float"),
    ],
)
def test_kinds(spec, kind):
    assert ParamSpec.from_dict(spec).kind == kind


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({}, "expected {value: x}"),
        ({"value": 1, "choices": [1]}, "only one of value, choices or low/high"),
        ({"choices": [1], "low": 0, "high": 1}, "only one of"),
        ({"choices": [1], "log": True}, "log and step apply only to low/high ranges"),
        ({"choices": []}, "choices is empty"),
        ({"choices": "q"}, "choices must be a list"),
        ({"choices": [[], ""]}, "are the same Optuna value ''"),
        ({"choices": [[["q"]]]}, "list items must be scalars"),
        ({"choices": [{"a": 1}]}, "expected a scalar or a list of scalars"),
        ({"choices": [4, 4]}, "are the same Optuna value"),
        ({"choices": [1, 1.0]}, "are the same Optuna value"),
        ({"choices": ["q+v", ["q", "v"]]}, "are the same Optuna value 'q+v'"),
        ({"value": {"a": 1}}, "expected a scalar"),
        ({"low": 1}, "high is missing"),
        ({"low": 2, "high": 1}, "low must be < high"),
        ({"low": 1, "high": 1}, "low must be < high"),
        ({"low": 0.0, "high": 1.0, "log": True}, "log range needs low > 0"),
        ({"low": -1.0, "high": 1.0, "log": True}, "log range needs low > 0"),
        ({"low": 1e-4, "high": 1e-2, "log": True, "step": 1e-4}, "cannot be combined"),
        ({"low": 0, "high": 10, "step": 0}, "step must be a number > 0"),
        ({"low": "a", "high": 1}, "low must be a finite number"),
        ({"low": 0.0, "high": float("inf")}, "high must be a finite number"),
        ({"low": True, "high": 3}, "low must be a finite number"),
        ({"low": 1, "high": 3, "log": "yes"}, "log must be true or false"),
    ],
)
def test_bad_specs(spec, needle):
    with pytest.raises(SpaceError) as info:
        ParamSpec.from_dict(spec)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_spec_key_is_named():
    with pytest.raises(SpaceError) as info:
        ParamSpec.from_dict({"low": 1, "high": 2, "logg": True})
    assert info.value.key == "logg"
    assert "unknown key" in info.value.detail


def test_scalar_instead_of_mapping():
    with pytest.raises(SpaceError, match="expected a mapping"):
        ParamSpec.from_dict(8)


def test_list_choices_encode_and_decode():
    spec = ParamSpec(choices=[["q", "v"], ["q", "k", "v", "o"], [0, 1, 2], []])
    assert spec.optuna_choices() == ["q+v", "q+k+v+o", "0+1+2", ""]
    assert spec.decode("") == []
    assert spec.decode("q+k+v+o") == ["q", "k", "v", "o"]
    assert spec.decode("0+1+2") == [0, 1, 2]
    assert isinstance(spec.decode("q+v"), list)
    with pytest.raises(AutopeftError, match="not one of the choices"):
        spec.decode("q+k")


def test_scalar_choices_decode_keeps_bool_apart_from_int():
    spec = ParamSpec(choices=[False, True])
    assert spec.decode(True) is True
    with pytest.raises(AutopeftError):
        spec.decode(1)
    assert ParamSpec(choices=[4, 8]).decode(8.0) == 8
    assert encode_choice("all") == "all"


def test_decoded_lists_are_fresh_copies():
    spec = ParamSpec(value=["q", "v"])
    first = spec.fixed_value()
    first.append("k")
    assert spec.fixed_value() == ["q", "v"]


def test_spec_is_frozen_and_hashable():
    spec = ParamSpec(choices=[["q", "v"], "all"])
    assert spec.choices == (("q", "v"), "all")
    hash(spec)
    with pytest.raises(AttributeError):
        spec.low = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "d",
    [
        {"value": ["q", "v"]},
        {"value": None},
        {"choices": [["q", "v"], "all", 3, 0.5, True]},
        {"low": 4, "high": 16, "log": True},
        {"low": 10, "high": 50, "log": False, "step": 10},
        {"low": 0.0, "high": 0.3, "log": False},
    ],
)
def test_spec_dict_round_trip(d):
    spec = ParamSpec.from_dict(d)
    assert spec.to_dict() == d
    assert ParamSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_method_space_learning_rate_checks():
    MethodSpace("lora", ParamSpec(choices=[1e-3, 1e-4, 5e-5]))
    with pytest.raises(SpaceError, match="range bounds must be floats") as info:
        MethodSpace("lora", ParamSpec(low=1, high=2))
    assert info.value.key == "learning_rate"
    with pytest.raises(SpaceError, match="learning rates must be numbers > 0"):
        MethodSpace("lora", ParamSpec(choices=[1e-3, 0.0]))
    with pytest.raises(SpaceError, match="learning rates must be numbers > 0"):
        MethodSpace("lora", ParamSpec(value="fast"))
    with pytest.raises(SpaceError, match="learning rates must be numbers > 0"):
        MethodSpace("lora", ParamSpec(low=-1.0, high=1.0))
    with pytest.raises(SpaceError, match="beside params"):
        MethodSpace("lora", None, {"learning_rate": ParamSpec(value=1e-3)})


def test_method_space_from_dict_paths():
    assert MethodSpace.from_dict("bitfit", None) == MethodSpace("bitfit")
    with pytest.raises(SpaceError) as info:
        MethodSpace.from_dict("lora", {"params": {"r": {"choices": []}}})
    assert info.value.key == "params.r"
    with pytest.raises(SpaceError) as info:
        MethodSpace.from_dict("lora", {"learning_rate": {"low": 1e-2, "high": 1e-4}})
    assert info.value.key == "learning_rate"
    with pytest.raises(SpaceError) as info:
        MethodSpace.from_dict("lora", {"lr": {"value": 1e-3}})
    assert info.value.key == "lr"
    assert "known: learning_rate, params" in info.value.detail


def _space() -> SearchSpace:
    return SearchSpace(
        name="t",
        description="test",
        methods={
            "lora": MethodSpace(
                "lora",
                ParamSpec(low=1e-4, high=1e-2, log=True),
                {"r": ParamSpec(choices=[4, 8]), "target_modules": ParamSpec(value=["q", "v"])},
            ),
            "bitfit": MethodSpace("bitfit", ParamSpec(choices=[1e-3, 1e-4])),
            "full": MethodSpace("full"),
        },
        source="x.yaml",
    )


def test_search_space_round_trip_through_json():
    space = _space()
    d = json.loads(json.dumps(space.to_dict()))
    assert d["source"] == "x.yaml"
    assert "learning_rate" not in d["methods"]["full"]
    back = SearchSpace.from_dict(d)
    assert back == space
    assert back.to_dict() == space.to_dict()


def test_search_space_requires_methods():
    with pytest.raises(SpaceError, match="methods: no methods"):
        SearchSpace("t", "", {})
    with pytest.raises(SpaceError, match="does not describe method"):
        SearchSpace("t", "", {"lora": MethodSpace("ia3")})
    with pytest.raises(SpaceError, match="name: must be a non-empty string"):
        SearchSpace("", "", {"full": MethodSpace("full")})


def test_restrict():
    space = _space()
    small = space.restrict(["full", "lora", "prompt_tuning"])
    assert list(small.methods) == ["lora", "full"]
    assert small.name == space.name and small.source == space.source
    assert list(space.methods) == ["lora", "bitfit", "full"]  # the original is untouched
    assert list(space.restrict(iter(["bitfit"])).methods) == ["bitfit"]
    with pytest.raises(AutopeftError, match="none of its methods"):
        space.restrict(["ia3"])
    with pytest.raises(AutopeftError, match="none of its methods"):
        space.restrict([])


def test_sampled_config_to_dict():
    cfg = SampledConfig("lora", {"r": 8, "target_modules": ["q", "v"]}, 1e-3)
    assert json.loads(json.dumps(cfg.to_dict())) == {
        "method": "lora", "params": {"r": 8, "target_modules": ["q", "v"]}, "learning_rate": 1e-3
    }


def test_space_error_message_names_source_and_key():
    err = SpaceError("low must be < high", "learning_rate").under("methods.lora")
    assert err.key == "methods.lora.learning_rate"
    located = SpaceError(err.detail, err.key, "x.yaml")
    assert str(located) == "search space x.yaml: methods.lora.learning_rate: low must be < high"
    assert isinstance(located, AutopeftError)
