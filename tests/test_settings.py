"""SearchSettings: the one source of a search's flags, checks and trial config."""

from __future__ import annotations

from dataclasses import fields

import pytest

from autopeft.budget import Budget
from autopeft.errors import AutopeftError
from autopeft.settings import OneLineParser, SearchSettings, field_docs
from autopeft.space import SampledConfig


def parser():
    p = OneLineParser(prog="autopeft search")
    SearchSettings.add_arguments(p)
    return p


def test_every_field_is_a_flag_with_its_docstring_as_help():
    actions = {a.dest: a for a in parser()._actions if a.dest != "help"}  # noqa: SLF001
    names = [f.name for f in fields(SearchSettings) if f.name != "budget"]
    names += [f.name for f in fields(Budget)]
    assert sorted(actions) == sorted(names)
    docs = {**field_docs(SearchSettings), **field_docs(Budget)}
    for name, action in actions.items():
        assert action.help and action.help == docs[name], name
        assert action.option_strings == ["--" + name.replace("_", "-")]
    assert actions["task"].required and actions["model"].required
    assert actions["sampler"].choices == ("tpe", "nsga2", "random")


def test_argv_and_code_give_the_same_settings():
    argv = ["--task", "glue/rte", "--model", "m", "--trials", "5", "--epochs", "1.5",
            "--cover-methods", "--precision", "bf16", "--study", "s1"]
    from_cli = SearchSettings.from_args(parser().parse_args(argv))
    in_code = SearchSettings(task="glue/rte", model="m", study="s1", cover_methods=True,
                             precision="bf16", budget=Budget(trials=5, epochs=1.5))
    assert from_cli == in_code == SearchSettings.from_argv(argv)


@pytest.mark.parametrize("flag, value, kwargs", [
    ("--trials", "0", {"budget": "trials=0"}),
    ("--epochs", "-1", {"budget": "epochs=-1"}),
    ("--concurrency", "0", {"concurrency": 0}),
    ("--batch-size", "0", {"batch_size": 0}),
    ("--eval-every", "0", {"eval_every": 0}),
])
def test_one_check_for_the_flag_and_the_object(flag, value, kwargs, capsys):
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["--task", "t", "--model", "m", flag, value])
    assert exit_.value.code == 2
    cli = capsys.readouterr().err
    with pytest.raises(AutopeftError) as err:
        if "budget" in kwargs:
            key, _, number = kwargs["budget"].partition("=")
            Budget(**{key: float(number)})
        else:
            SearchSettings(task="t", model="m", **kwargs)
    assert f"{flag} must be positive" in str(err.value)
    assert "must be positive" in cli and flag in cli


def test_cross_field_checks():
    with pytest.raises(AutopeftError, match="--resume needs --study"):
        SearchSettings.from_argv(["--task", "t", "--model", "m", "--resume"])
    with pytest.raises(AutopeftError, match="bad study name"):
        SearchSettings(task="t", model="m", study="a b")
    with pytest.raises(AutopeftError, match="bad search arguments"):
        SearchSettings.from_argv(["--model", "m"])


def test_trial_config_comes_from_the_settings():
    settings = SearchSettings(task="glue/sst2", model="m", batch_size=4, max_length=64,
                              seed=3, precision="fp32", eval_every=5, save_full=True,
                              budget=Budget(epochs=2, max_steps=7, trial_timeout=9.0),
                              storage="postgresql://u:secret@h/db")
    sampled = SampledConfig("lora", {"r": 4}, 1e-3)
    cfg = settings.to_trial_config(sampled, model_path="/abs/m", threads=2, save_dir="/a/t",
                                   grad_accum=2)
    assert (cfg.task, cfg.model, cfg.method, cfg.params, cfg.learning_rate) == (
        "glue/sst2", "/abs/m", "lora", {"r": 4}, 1e-3)
    assert (cfg.epochs, cfg.max_steps, cfg.timeout) == (2, 7, 9.0)
    assert (cfg.batch_size, cfg.max_length, cfg.seed, cfg.precision) == (4, 64, 3, "fp32")
    assert (cfg.eval_every, cfg.save_full, cfg.save_dir, cfg.grad_accum, cfg.threads) == (
        5, True, "/a/t", 2, 2)
    assert settings.without_secrets().storage is None
    assert "storage" not in settings.to_stored() and "budget" not in settings.to_stored()


def test_help_needs_no_heavy_imports():
    import subprocess
    import sys

    code = ("import sys; from autopeft.cli.main import build_parser; build_parser(); "
            "bad = [m for m in ('torch', 'ray', 'transformers', 'optuna') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
