"""Each task's official metrics, computed from predicted and true labels.

Predictions may contain None: T5 output that does not parse as a label. For classification
such a prediction is always wrong: on binary tasks it becomes the opposite of the true label
(so it also costs F1 and Matthews correlation), on multi-class tasks an invalid class -1 that
no reference has (macro-F1 is taken over the real classes only). For regression None becomes
0.0, the bottom of the STS-B scale, rather than being dropped, so unparseable output is
penalised and every model is scored on the same examples.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

from autopeft.tasks.registry import TaskSpec

_INVALID = -1


def compute_metrics(
    spec: TaskSpec, predictions: Sequence, references: Sequence
) -> dict[str, float]:
    """Score predictions with every metric in ``spec.metrics``.

    Args:
        spec: The task.
        predictions: Predicted class indices (or scores for regression); None for output
            that could not be parsed.
        references: True labels, same length.

    Returns:
        Metric name -> value as a plain float; never NaN (an undefined correlation, e.g.
        from constant predictions, is 0.0).

    Raises:
        ValueError: If the sequences are empty or differ in length.
    """
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("no predictions to score")
    if spec.is_regression:
        return _regression(spec, predictions, references)
    return _classification(spec, predictions, references)


def _classification(spec: TaskSpec, predictions: list, references: list) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    refs = [int(r) for r in references]
    binary = spec.num_labels == 2
    preds = [
        (1 - ref if binary else _INVALID) if pred is None else int(pred)
        for pred, ref in zip(predictions, refs, strict=True)
    ]
    classes = list(range(spec.num_labels))
    scores: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about ill-defined scores; they are 0
        for metric in spec.metrics:
            if metric == "accuracy":
                value = accuracy_score(refs, preds)
            elif metric == "f1":
                value = f1_score(refs, preds, pos_label=1, average="binary", zero_division=0)
            elif metric == "f1_macro":
                value = f1_score(refs, preds, labels=classes, average="macro", zero_division=0)
            elif metric == "matthews_correlation":
                value = matthews_corrcoef(refs, preds)
            else:
                raise ValueError(f"{spec.name}: metric {metric!r} does not apply to classes")
            scores[metric] = _finite(value)
    return scores


def _regression(spec: TaskSpec, predictions: list, references: list) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    preds = [0.0 if pred is None else float(pred) for pred in predictions]
    refs = [float(r) for r in references]
    scores: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN
        for metric in spec.metrics:
            if len(refs) < 2:
                value = 0.0
            elif metric == "pearson":
                value = pearsonr(preds, refs)[0]
            elif metric == "spearman":
                value = spearmanr(preds, refs)[0]
            else:
                raise ValueError(f"{spec.name}: metric {metric!r} does not apply to scores")
            scores[metric] = _finite(value)
    return scores


def _finite(value: object) -> float:
    value = float(value)  # type: ignore[arg-type]
    return value if math.isfinite(value) else 0.0


def bootstrap_standard_error(spec: TaskSpec, predictions: Sequence, references: Sequence,
                             metric: str, *, rounds: int = 200, seed: int = 0) -> float:
    """Standard error of ``metric`` on this dev set: the standard deviation of the metric
    over ``rounds`` resamples of the examples with replacement (a seeded bootstrap).

    For F1, Matthews correlation and correlations, whose error has no closed form like the
    binomial one of accuracy. The front reads it as the metric's resolution (stored under
    ``metrics["<metric>_se"]``). 0.0 for fewer than two examples.
    """
    import random
    import statistics
    from dataclasses import replace

    predictions, references = list(predictions), list(references)
    n = len(references)
    if n < 2:
        return 0.0
    one = replace(spec, metrics=(metric,), primary_metric=metric)
    rng = random.Random(seed)
    scores = []
    for _ in range(rounds):
        idx = [rng.randrange(n) for _ in range(n)]
        scores.append(compute_metrics(one, [predictions[i] for i in idx],
                                      [references[i] for i in idx])[metric])
    return statistics.stdev(scores)
