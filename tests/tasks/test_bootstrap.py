"""The bootstrap standard error the front reads as a metric's resolution."""

from __future__ import annotations

import math
import random

import pytest

from autopeft.tasks import get_task
from autopeft.tasks.metrics import bootstrap_standard_error


def _labels(n, accuracy, seed=0):
    rng = random.Random(seed)
    refs = [rng.randrange(2) for _ in range(n)]
    preds = [r if i < accuracy * n else 1 - r for i, r in enumerate(refs)]
    return preds, refs


def test_bootstrap_of_accuracy_is_the_binomial_error():
    preds, refs = _labels(400, 0.8)
    se = bootstrap_standard_error(get_task("glue/sst2"), preds, refs, "accuracy", rounds=400)
    assert se == pytest.approx(math.sqrt(0.8 * 0.2 / 400), rel=0.2)


def test_bootstrap_of_f1_and_mcc_is_seeded_and_shrinks_with_more_examples():
    spec = get_task("glue/mrpc")
    small = bootstrap_standard_error(spec, *_labels(100, 0.8), "f1")
    assert small == bootstrap_standard_error(spec, *_labels(100, 0.8), "f1")  # same seed
    large = bootstrap_standard_error(spec, *_labels(1600, 0.8), "f1")
    assert 0 < large < small / 2
    cola = get_task("glue/cola")
    assert bootstrap_standard_error(cola, *_labels(200, 0.8), "matthews_correlation") > 0
    assert bootstrap_standard_error(spec, [1], [1], "f1") == 0.0
