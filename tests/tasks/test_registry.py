"""The task registry: coverage, metrics per task, name resolution, validation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autopeft.errors import AutopeftError
from autopeft.tasks import TaskSpec, get_task, list_tasks
from autopeft.tasks.registry import KNOWN_METRICS, register_task

GLUE = {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"}
SUPERGLUE = {"boolq", "cb", "copa", "rte", "wic", "wsc"}


def test_registry_covers_glue_and_superglue_without_span_tasks():
    names = {spec.name for spec in list_tasks()}
    expected = {f"glue/{t}" for t in GLUE} | {f"superglue/{t}" for t in SUPERGLUE}
    assert names == expected
    assert not {"superglue/multirc", "superglue/record", "superglue/axb"} & names


@pytest.mark.parametrize("spec", list_tasks(), ids=lambda s: s.name)
def test_every_spec_is_consistent(spec: TaskSpec):
    assert spec.primary_metric in spec.metrics
    assert set(spec.metrics) <= set(KNOWN_METRICS)
    assert spec.hub_path == {"glue": "nyu-mll/glue", "superglue": "aps/super_glue"}[
        spec.benchmark
    ]
    assert spec.name == f"{spec.benchmark}/{spec.short_name}"
    assert spec.eval_split.startswith("validation")
    if spec.is_regression:
        assert spec.label_names is None and spec.num_labels == 1
    else:
        assert spec.num_labels == len(spec.label_names) >= 2
        assert len(set(spec.label_names)) == spec.num_labels


@pytest.mark.parametrize(
    ("name", "metrics", "primary"),
    [
        ("glue/cola", ("matthews_correlation",), "matthews_correlation"),
        ("glue/sst2", ("accuracy",), "accuracy"),
        ("glue/mrpc", ("f1", "accuracy"), "f1"),
        ("glue/qqp", ("f1", "accuracy"), "f1"),
        ("glue/stsb", ("pearson", "spearman"), "pearson"),
        ("glue/mnli", ("accuracy",), "accuracy"),
        ("superglue/cb", ("f1_macro", "accuracy"), "f1_macro"),
        ("superglue/boolq", ("accuracy",), "accuracy"),
    ],
)
def test_official_metrics(name, metrics, primary):
    spec = get_task(name)
    assert spec.metrics == metrics
    assert spec.primary_metric == primary


def test_hub_label_orders_and_fields():
    assert get_task("glue/rte").label_names == ("entailment", "not_entailment")
    assert get_task("glue/mnli").label_names == ("entailment", "neutral", "contradiction")
    assert get_task("glue/mnli").eval_split == "validation_matched"
    assert get_task("glue/sst2").label_names == ("negative", "positive")
    assert get_task("glue/wnli").label_names == ("not_entailment", "entailment")
    assert get_task("superglue/cb").label_names == ("entailment", "contradiction", "neutral")
    assert get_task("superglue/boolq").label_names == ("False", "True")
    assert get_task("superglue/copa").text_fields == ("premise", "question", "choice1", "choice2")
    wsc = get_task("superglue/wsc")
    assert (wsc.subset, wsc.short_name) == ("wsc.fixed", "wsc")
    stsb = get_task("glue/stsb")
    assert stsb.is_regression and stsb.num_labels == 1


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("glue/rte", "glue/rte"),
        (" GLUE/RTE ", "glue/rte"),
        ("superglue/rte", "superglue/rte"),
        ("super_glue/boolq", "superglue/boolq"),
        ("superglue/wsc.fixed", "superglue/wsc"),
        ("sst2", "glue/sst2"),
        ("boolq", "superglue/boolq"),
        ("wsc.fixed", "superglue/wsc"),
    ],
)
def test_get_task_aliases(alias, canonical):
    assert get_task(alias).name == canonical


def test_bare_rte_is_ambiguous():
    with pytest.raises(AutopeftError, match="glue/rte or superglue/rte"):
        get_task("rte")


@pytest.mark.parametrize("name", ["glue/nope", "nope", "superglue/multirc", "imdb/sst2"])
def test_unknown_task_lists_known_names(name):
    with pytest.raises(AutopeftError) as info:
        get_task(name)
    message = str(info.value)
    assert f"unknown task {name!r}" in message
    assert "glue/cola" in message and "superglue/wsc" in message
    assert "\n" not in message


def test_register_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_task(get_task("glue/rte"))


def _spec(**overrides) -> TaskSpec:
    fields = dict(
        name="glue/x", benchmark="glue", subset="x", hub_path="nyu-mll/glue",
        text_fields=("sentence",), label_names=("a", "b"), metrics=("accuracy",),
        primary_metric="accuracy",
    )
    fields.update(overrides)
    return TaskSpec(**fields)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"benchmark": "xglue"}, "benchmark"),
        ({"name": "glue/X"}, "lowercase"),
        ({"name": "superglue/x"}, "lowercase"),
        ({"primary_metric": "f1"}, "primary_metric"),
        ({"metrics": ("bleu",), "primary_metric": "bleu"}, "unknown metrics"),
        ({"label_names": None}, "regression"),
        ({"metrics": ("pearson",), "primary_metric": "pearson"}, "regression"),
        ({"label_names": ("a",)}, "at least 2"),
        ({"text_fields": ()}, "text_fields"),
    ],
)
def test_taskspec_validation(overrides, message):
    assert _spec().num_labels == 2
    with pytest.raises(ValueError, match=message):
        _spec(**overrides)


def test_import_is_cheap():
    code = (
        "import sys, autopeft.tasks\n"
        "heavy = [m for m in ('datasets', 'sklearn', 'scipy', 'numpy', 'torch') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
