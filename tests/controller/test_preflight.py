"""Pre-flight helpers that need no model: smallest configurations, writable folders,
positions, and the result-changing settings compared when a study is continued."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from autopeft.controller.preflight import (
    check_positions,
    check_writable,
    make_study_name,
    smallest_params,
)
from autopeft.errors import AutopeftError
from autopeft.settings import STUDY_NAME, SearchSettings
from autopeft.space.schema import MethodSpace, ParamSpec


def test_smallest_params_takes_lows_and_the_least_choice():
    ms = MethodSpace("lora", None, {
        "r": ParamSpec(low=4, high=64),
        "lora_alpha": ParamSpec(choices=[32, 8, 16]),
        "target_modules": ParamSpec(choices=[["q", "k", "v"], ["q", "v"]]),
        "layers": ParamSpec(choices=["upper_half", "all"]),
        "lora_dropout": ParamSpec(value=0.1),
    })
    assert smallest_params(ms) == {"r": 4, "lora_alpha": 8, "target_modules": ["q", "v"],
                                   "layers": "upper_half", "lora_dropout": 0.1}


def test_writable_folder_checks_the_nearest_existing_one(tmp_path):
    check_writable(tmp_path / "not" / "yet" / "made")  # nothing is created
    assert not (tmp_path / "not").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(AutopeftError, match="is a file"):
        check_writable(tmp_path / "f" / "study")


def test_write_errors_are_one_line(tmp_path, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(AutopeftError, match="cannot write in .*Read-only file system"):
        check_writable(tmp_path / "study")


def _data(*lengths):
    return SimpleNamespace(train_lengths=list(lengths), eval_lengths=[3])


def test_positions_of_the_model_bound_the_inputs():
    bert = SimpleNamespace(name="bert", is_seq2seq=False,
                           config=SimpleNamespace(max_position_embeddings=512,
                                                  model_type="bert"))
    check_positions(_data(512, 7), bert)
    with pytest.raises(AutopeftError, match="up to 513 tokens do not fit the 512 positions"):
        check_positions(_data(513), bert)
    roberta = SimpleNamespace(name="r", is_seq2seq=False, config=SimpleNamespace(
        max_position_embeddings=514, model_type="roberta"))
    with pytest.raises(AutopeftError, match="513 tokens do not fit the 512 positions"):
        check_positions(_data(513), roberta)
    t5 = SimpleNamespace(name="t5", is_seq2seq=True, config=SimpleNamespace(model_type="t5"))
    check_positions(_data(5000), t5)


def test_made_up_study_names_follow_the_rule_of_study():
    name = make_study_name("glue/rte", "/models/mod\u00e8le-" + "x" * 300)
    assert STUDY_NAME.fullmatch(name) and len(name) <= 120


@pytest.mark.parametrize("name", ["a\u00e9\u0663", "\u00e9tude", "x" * 121, "-x"])
def test_study_names_are_ascii(name):
    with pytest.raises(AutopeftError, match="ASCII letters"):
        SearchSettings(task="glue/rte", model="m", study=name)


def test_result_settings_are_marked_on_their_fields():
    s = SearchSettings(task="glue/rte", model="m")
    assert set(s.result_settings()) == {
        "epochs", "max_steps", "trial_timeout", "seed", "batch_size", "max_length",
        "precision", "train_samples", "eval_samples", "profile"}


def test_continuing_compares_every_result_setting():
    from autopeft.controller.resume import check_compatible

    asked = SearchSettings(task="glue/rte", model="m", max_length=128, seed=3)
    stored = SearchSettings(task="glue/rte", model="m")
    study = SimpleNamespace(name="s", task="glue/rte", model="m", space={"name": "q"},
                            space_name="q", budget=stored.budget.to_dict(),
                            settings=stored.to_stored())
    check_compatible(study, task="glue/rte", model="m", model_path="m", space={"name": "q"},
                     settings=stored.result_settings())
    with pytest.raises(AutopeftError) as err:
        check_compatible(study, task="glue/rte", model="m", model_path="m",
                         space={"name": "q"}, settings=asked.result_settings())
    assert "--max-length 256 (asked: 128)" in str(err.value)
    assert "--seed 0 (asked: 3)" in str(err.value)
    old = SimpleNamespace(**{**vars(study), "settings": {}, "budget": {}})  # an older study
    check_compatible(old, task="glue/rte", model="m", model_path="m", space={"name": "q"},
                     settings=asked.result_settings())


@pytest.mark.parametrize("flag, value, needle", [
    ("--seed", "-1", "between 0 and 4294967295"),
    ("--seed", str(2**40), "between 0 and 4294967295"),
    ("--epochs", "inf", "finite"),
    ("--trial-timeout", "nan", "finite"),
    ("--max-length", str(2**70), "between 1 and"),
])
def test_numbers_out_of_range(flag, value, needle):
    with pytest.raises(AutopeftError, match=needle):
        SearchSettings.from_argv(["--task", "glue/rte", "--model", "m", flag, value])
