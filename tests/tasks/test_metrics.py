"""Official metrics on small hand-computed examples, None predictions, degenerate input."""

from __future__ import annotations

import math

import pytest

from autopeft.tasks import compute_metrics, get_task, list_tasks


def test_accuracy_sst2():
    scores = compute_metrics(get_task("glue/sst2"), [1, 0, 1, 1], [1, 0, 0, 1])
    assert scores == {"accuracy": 0.75}


def test_f1_and_accuracy_mrpc():
    # TP=2 (idx 0, 4), FP=1 (idx 2), FN=1 (idx 1): P = R = F1 = 2/3; 3 of 5 right.
    scores = compute_metrics(get_task("glue/mrpc"), [1, 0, 1, 0, 1], [1, 1, 0, 0, 1])
    assert scores == pytest.approx({"f1": 2 / 3, "accuracy": 3 / 5})
    assert list(scores) == ["f1", "accuracy"]


def test_f1_uses_positive_class_qqp():
    # All predicted negative: accuracy 0.5 but no true positive, so F1 0.
    scores = compute_metrics(get_task("glue/qqp"), [0, 0, 0, 0], [1, 0, 1, 0])
    assert scores == {"f1": 0.0, "accuracy": 0.5}


def test_matthews_cola():
    # TP=1, TN=2, FP=0, FN=1: (1*2 - 0*1) / sqrt(1 * 2 * 2 * 3) = 2 / sqrt(12).
    scores = compute_metrics(get_task("glue/cola"), [1, 0, 0, 0], [1, 1, 0, 0])
    assert scores == pytest.approx({"matthews_correlation": 2 / math.sqrt(12)})


def test_matthews_constant_prediction_is_zero():
    scores = compute_metrics(get_task("glue/cola"), [1, 1, 1, 1], [1, 1, 0, 0])
    assert scores == {"matthews_correlation": 0.0}


def test_macro_f1_cb():
    # class 0: P 1, R 1/2 -> 2/3; class 1: P 1/3, R 1 -> 1/2; class 2: never predicted -> 0.
    scores = compute_metrics(get_task("superglue/cb"), [0, 1, 1, 1], [0, 0, 1, 2])
    assert scores == pytest.approx({"f1_macro": (2 / 3 + 1 / 2 + 0) / 3, "accuracy": 0.5})


def test_pearson_spearman_stsb():
    # Centred: preds (-1, 0, 1), refs (-1, 1, 0): cov 1, variances 2 -> 0.5; ranks equal values.
    scores = compute_metrics(get_task("glue/stsb"), [1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert scores == pytest.approx({"pearson": 0.5, "spearman": 0.5})


def test_spearman_is_rank_based():
    scores = compute_metrics(get_task("glue/stsb"), [1, 2, 3, 4], [1, 4, 9, 16])
    assert scores["spearman"] == pytest.approx(1.0)
    assert 0.95 < scores["pearson"] < 1.0


def test_constant_regression_predictions_give_zero_not_nan():
    scores = compute_metrics(get_task("glue/stsb"), [2.5, 2.5, 2.5], [1.0, 3.0, 2.0])
    assert scores == {"pearson": 0.0, "spearman": 0.0}


def test_none_is_wrong_for_binary_classification():
    # None -> opposite of the truth: mapped preds (0, 1, 1) vs refs (1, 0, 1): TP1 FP1 FN1.
    scores = compute_metrics(get_task("glue/mrpc"), [None, None, 1], [1, 0, 1])
    assert scores == pytest.approx({"f1": 0.5, "accuracy": 1 / 3})
    cola = compute_metrics(get_task("glue/cola"), [None, None], [0, 1])
    assert cola == {"matthews_correlation": -1.0}


def test_none_is_wrong_for_multiclass():
    # class 0 never hit (F1 0), classes 1 and 2 perfect: macro-F1 2/3.
    scores = compute_metrics(get_task("superglue/cb"), [None, 1, 2], [0, 1, 2])
    assert scores == pytest.approx({"f1_macro": 2 / 3, "accuracy": 2 / 3})
    mnli = compute_metrics(get_task("glue/mnli"), [None, None, None], [0, 1, 2])
    assert mnli == {"accuracy": 0.0}


def test_none_is_zero_for_regression():
    # preds (0, 2, 3) vs refs (1, 3, 2): cov 2, var_p 42/9, var_r 2 -> 6 / sqrt(84).
    scores = compute_metrics(get_task("glue/stsb"), [None, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert scores["pearson"] == pytest.approx(6 / math.sqrt(84))
    assert scores["spearman"] == pytest.approx(0.5)


@pytest.mark.parametrize("spec", list_tasks(), ids=lambda s: s.name)
def test_perfect_predictions_score_one_for_every_task(spec):
    refs = [0.0, 1.2, 3.4, 5.0] if spec.is_regression else [i % spec.num_labels for i in range(6)]
    scores = compute_metrics(spec, refs, refs)
    assert list(scores) == list(spec.metrics)
    assert all(type(v) is float for v in scores.values())
    assert scores == pytest.approx(dict.fromkeys(spec.metrics, 1.0))


def test_accepts_tuples_and_generators():
    scores = compute_metrics(get_task("glue/rte"), (p for p in [0, 1]), (0, 0))
    assert scores == {"accuracy": 0.5}


def test_rejects_length_mismatch_and_empty():
    with pytest.raises(ValueError, match="2 predictions for 3 references"):
        compute_metrics(get_task("glue/rte"), [0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="no predictions"):
        compute_metrics(get_task("glue/rte"), [], [])
