"""Ray resources of each trial: the planner's GPU share, a whole GPU, or none."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from autopeft.testing import tiny_model_dir

CUDA = SimpleNamespace(device="cuda")
CPU = SimpleNamespace(device="cpu")


@pytest.mark.parametrize(("cluster", "profile", "expected"), [
    ({"CPU": 8.0, "GPU": 2.0}, CUDA, True),
    ({"CPU": 8.0, "GPU": 2.0}, CPU, False),  # a CPU profile plans for CPU memory
    ({"CPU": 8.0, "GPU": 2.0}, None, True),  # --profile none: nothing planned, GPU used
    ({"CPU": 8.0}, CUDA, False),
    ({"CPU": 8.0}, None, False),
])
def test_trials_use_gpu(cluster, profile, expected):
    from autopeft.controller.tuning import trials_use_gpu

    assert trials_use_gpu(cluster, profile) is expected


def test_trial_bundle_takes_the_planned_share_or_a_whole_gpu():
    from autopeft.controller.searcher import GPU_KEY
    from autopeft.controller.tuning import trial_bundle

    assert trial_bundle({GPU_KEY: 0.25}, 2, True) == {"CPU": 2, "GPU": 0.25}
    assert trial_bundle({}, 2, True) == {"CPU": 2, "GPU": 1.0}  # not planned
    assert trial_bundle({GPU_KEY: 0.25}, 2, False) == {"CPU": 2}


@pytest.mark.slow
@pytest.mark.usefixtures("shared_data")
def test_profile_none_on_a_cluster_with_a_gpu(tmp_path):
    """``--profile none`` on a Ray with a GPU resource (Ray only counts it: CPU torch still
    trains on CPU) runs its trials, each holding a whole GPU."""
    from autopeft.budget import Budget
    from autopeft.controller.ray_env import init_ray
    from autopeft.controller.search import run_search
    from autopeft.settings import SearchSettings
    from autopeft.store import Store

    model = tiny_model_dir("bert", tmp_path / "bert")
    db = f"sqlite:///{tmp_path}/g.db"
    ray = init_ray(num_cpus=2, num_gpus=1)  # run_search joins this Ray
    lines: list[str] = []
    try:
        run_search(SearchSettings(
            task="glue/sst2", model=str(model), space="quick", study="gpu-none", storage=db,
            budget=Budget(epochs=1, max_steps=2, trials=2), sampler="random",
            train_samples=32, eval_samples=16, batch_size=8, max_length=64, profile="none",
            cpus_per_trial=1), say=lines.append)
    finally:
        ray.shutdown()
    rows = Store(db).trials("gpu-none")
    assert [r.status for r in rows] == ["completed", "completed"], (rows, lines)
    assert all(r.extra["gpu_ids"] == ["0"] for r in rows)  # one whole GPU each


def test_front_only_pruning_never_deletes_outside_the_artifacts_folder(tmp_path):
    """A row whose adapter_path names a folder outside the study's (edited by hand, or
    written by another search) is left alone by ``--save-adapters front``."""
    from autopeft.controller.tuning import StoreCallback
    from autopeft.store import Store

    root = tmp_path / "artifacts" / "s"
    (root / "trial-1").mkdir(parents=True)
    victim = tmp_path / "someone-else"
    victim.mkdir()
    db = f"sqlite:///{tmp_path}/p.db"
    store = Store(db)
    store.create_study("s", task="glue/sst2", model="m", space_name="quick", space={},
                       budget={}, hardware={}, settings={"artifacts_dir": str(root)},
                       objectives=[("accuracy", "maximize")])
    for number, path in ((1, root / "trial-1"), (2, victim)):
        store.add_trial("s", number=number, method="lora", params={}, learning_rate=1e-3,
                        status="completed", primary_metric=0.5,
                        extra={"adapter_path": str(path)})
    lines: list[str] = []
    callback = StoreCallback(db, "s", 2, "accuracy", None, lines.append, keep_front_only=True)
    callback._drop_adapters(front=set())
    assert not (root / "trial-1").exists() and victim.is_dir()
    assert lines == [f"warning: not deleting '{victim}': it is outside the study's artifacts "
                     f"folder {root}"]
