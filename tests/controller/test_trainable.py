"""What a trial reports becomes the stored row (trial_row), without Ray."""

from __future__ import annotations

from autopeft.controller.trainable import objective_values
from autopeft.runner.config import TrialResult
from autopeft.status import trial_row
from autopeft.store import Store


def test_a_reported_result_is_stored_with_its_unparseable_count(tmp_path):
    result = TrialResult(
        status="failed", reason="all 40 dev predictions were unparseable (e.g. ...)",
        primary_metric=0.0, metrics={"accuracy": 0.0}, trainable_params=100, total_params=1000,
        steps=4, unparseable_predictions=40, eval_examples=40, device="cpu",
    ).to_dict()
    result.update(method="prefix_tuning", params={"num_virtual_tokens": 8},
                  learning_rate=1e-2, gpu_ids=["0"])
    assert objective_values(result, "accuracy") == {}  # Optuna gets no values: not ranked
    with Store(f"sqlite:///{tmp_path}/t.db") as store:
        store.create_study("s", task="rte", model="m", space_name="x", space={}, budget={},
                           hardware={}, settings={}, objectives=[("accuracy", "maximize")])
        rec = store.add_trial("s", number=0, **trial_row(result))
    assert (rec.status, rec.unparseable_predictions, rec.eval_examples) == ("failed", 40, 40)
    assert rec.extra == {"device": "cpu", "gpu_ids": ["0"]}
