"""Configurations predicted not to fit the profile are stored as infeasible, never trained."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from autopeft.testing import tiny_model_dir

pytestmark = pytest.mark.usefixtures("shared_data")


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_model_dir("bert", tmp_path_factory.mktemp("bert"))


def _profile(tmp_path, usable):
    path = tmp_path / "tiny.yaml"
    path.write_text(f"description: a tiny test device\ndevice: cpu\nmemory_bytes: 1 GiB\n"
                    f"usable_bytes: {usable}\nbf16: false\nfp16: false\npeak_tflops: null\n"
                    "trials_per_device: 1\n")
    return str(path)


def test_planner_splits_batches_then_gives_up(bert_dir, tmp_path):
    from autopeft.controller.feasibility import Planner
    from autopeft.hardware import load_profile
    from autopeft.modeling import resolve_model

    config = resolve_model(str(bert_dir)).config

    def planner(usable):
        return Planner(config, num_labels=2, batch_size=16, seq_len=64, target_len=None,
                       precision="auto", profile=load_profile(_profile(tmp_path, usable)))

    roomy = planner(10**9).plan("lora", {})
    assert roomy.fits and roomy.grad_accum == 1 and roomy.predicted_bytes < 10**9
    full = planner(10**9).plan("full", {})
    # a budget between the batch-1 and the batch-16 peak of full fine-tuning: accumulate
    tight_budget = (full.predicted_bytes + planner(10**9)._predict("full", {}, 1).total_bytes) // 2
    tight = planner(tight_budget).plan("full", {})
    assert tight.fits and tight.grad_accum > 1 and tight.predicted_bytes <= tight_budget
    hopeless = planner(1000).plan("full", {})
    assert not hopeless.fits and hopeless.violation() > 0
    assert "exceeds" in hopeless.reason and "tiny" in hopeless.reason


@pytest.mark.slow
def test_search_never_trains_what_cannot_fit(bert_dir, tmp_path):
    from autopeft.memory import predict_peak_memory
    from autopeft.modeling import resolve_model

    config = resolve_model(str(bert_dir)).config
    lora = predict_peak_memory(config, "lora", {}, batch_size=1, seq_len=64, device="cpu")
    full = predict_peak_memory(config, "full", {}, batch_size=1, seq_len=64, device="cpu")
    assert full.total_bytes > 2 * lora.total_bytes
    # lora and bitfit fit at batch 8; full fine-tuning does not fit even one at a time
    usable = (full.total_bytes + 2 * lora.total_bytes) // 2
    space = tmp_path / "space.yaml"
    space.write_text("name: fit\nmethods:\n  full: {}\n  lora: {}\n")
    db = f"sqlite:///{tmp_path}/p.db"
    run = subprocess.run(
        [sys.executable, "-m", "autopeft.cli.main", "search", "--task", "glue/sst2", "--model",
         str(bert_dir), "--space", str(space), "--trials", "3", "--epochs", "1", "--max-steps",
         "2", "--batch-size", "8", "--train-samples", "32", "--eval-samples", "16",
         "--max-length", "64", "--study", "fit", "--storage", db, "--sampler", "random",
         "--seed", "2", "--profile", _profile(tmp_path, usable)],  # seed 2 samples full first
        capture_output=True, text=True, timeout=600, env={**os.environ})
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(subprocess.run(
        [sys.executable, "-m", "autopeft.cli.main", "trials", "--study", "fit", "--storage", db,
         "-f", "json"], capture_output=True, text=True).stdout)
    trained = [r for r in rows if r["status"] != "infeasible"]
    infeasible = [r for r in rows if r["status"] == "infeasible"]
    assert len(trained) == 3 and all(r["method"] == "lora" for r in trained)
    assert infeasible and all(r["method"] == "full" for r in infeasible)
    assert all("exceeds" in r["reason"] and r["memory_kind"] == "predicted" for r in infeasible)
    assert not any(r["is_pareto"] for r in infeasible)
    import optuna

    study = optuna.load_study(study_name="autopeft:fit", storage=db)
    by_number = {t.number: t for t in study.trials}
    for r in infeasible:  # the sampler was told: constraint > 0
        assert by_number[r["number"]].constraints["memory"] > 0


@pytest.mark.slow
def test_a_prediction_that_raises_fails_one_configuration_not_the_search(bert_dir, tmp_path,
                                                                         monkeypatch):
    """The planner runs in the driver: a predictor that raises for one method is patched in
    this process (the search runs here, its trials in Ray workers)."""
    import optuna

    import autopeft.memory
    from autopeft.budget import Budget
    from autopeft.controller.search import run_search
    from autopeft.settings import SearchSettings
    from autopeft.store import Store

    real = autopeft.memory.predict_peak_memory

    def predict(config, method, params, **kw):
        if method == "full":
            raise RuntimeError("cannot register a hook on a tensor\nthat doesn't require grad")
        return real(config, method, params, **kw)

    monkeypatch.setattr(autopeft.memory, "predict_peak_memory", predict)
    space = tmp_path / "space.yaml"
    space.write_text("name: raises\nmethods:\n  full: {}\n  lora: {}\n")
    db = f"sqlite:///{tmp_path}/r.db"
    lines: list[str] = []
    try:
        run_search(SearchSettings(
            task="glue/sst2", model=str(bert_dir), space=str(space), study="raises",
            storage=db, budget=Budget(epochs=1, max_steps=2, trials=2), sampler="random",
            seed=2, train_samples=32, eval_samples=16, batch_size=8, max_length=64,
            cpus_per_trial=1, profile=_profile(tmp_path, 10**9)),  # seed 2: full first
            say=lines.append)
    finally:  # the search shuts its Ray down, unless it failed before starting trials
        import ray

        ray.shutdown()

    store = Store(db)
    assert store.require_study("raises").status == "finished"
    rows = store.trials("raises")
    failed = [r for r in rows if r.status == "failed"]
    trained = [r for r in rows if r.status != "failed"]
    assert len(trained) == 2 and all(r.method == "lora" for r in trained), lines
    assert failed and all(r.method == "full" and r.steps is None for r in failed), lines
    assert all(r.reason == "memory prediction failed: RuntimeError: cannot register a hook on "
               "a tensor" for r in failed)
    assert any("[failed] trial" in line for line in lines)
    study = optuna.load_study(study_name="autopeft:raises", storage=db)
    by_number = {t.number: t for t in study.trials}
    for r in failed:  # the sampler was told: pruned, constraint > 0
        assert by_number[r.number].state.name == "PRUNED"
        assert by_number[r.number].constraints["memory"] > 0
