"""Live progress through a real search: from the trials in Ray workers to the driver."""

from __future__ import annotations

import time

import pytest

from autopeft.testing import tiny_model_dir

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_data")]


def test_the_pump_delivers_in_order_and_a_gone_inbox_fails_no_trial():
    from autopeft.controller.progress import ProgressPump, trial_reporter
    from autopeft.controller.ray_env import init_ray

    ray = init_ray(num_cpus=1)
    try:
        got: list[dict] = []
        with ProgressPump(got.append, every=0.05) as pump:

            @ray.remote(num_cpus=0)
            def trial(inbox):
                rep = trial_reporter(inbox, {"trial": 7})
                rep.start()
                for step in range(1, 4):
                    rep.evaluated(step, step / 10)
                rep.finished("completed", 0.3, 3)
                return True

            assert ray.get(trial.remote(pump.inbox))
            # pushes are fire-and-forget: the trial may return before its last ones reach
            # the inbox, so wait for them (the pump drains every 0.05 s) rather than race
            deadline = time.monotonic() + 30
            while len(got) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
        # the pump's last drain on exit collected everything, in the order sent
        assert [(m["kind"], m["step"]) for m in got] == [
            ("start", 0), ("eval", 1), ("eval", 2), ("eval", 3), ("end", 3)]
        assert got[-1]["metric"] == 0.3 and got[-1]["status"] == "completed"

        # the pump killed its inbox on exit: a trial still sending goes on undisturbed
        @ray.remote(num_cpus=0)
        def orphan(inbox):
            rep = trial_reporter(inbox, {"trial": 8})
            rep.start()
            rep.evaluated(1, 0.5)
            rep.finished("completed", 0.5, 1)
            return "trained on"

        assert ray.get(orphan.remote(pump.inbox)) == "trained on"

        # a display that raises loses its messages, not the search
        def broken(message):
            raise ValueError("display bug")

        with ProgressPump(broken, every=0.05) as bad:
            bad.deliver({"kind": "search", "study": "s", "total": 1, "metric": "accuracy"})
            assert ray.get(trial.remote(bad.inbox))
    finally:
        ray.shutdown()


def test_trials_send_progress_to_the_driver_and_the_store_is_unchanged(tmp_path):
    from autopeft.budget import Budget
    from autopeft.controller.ray_env import init_ray
    from autopeft.controller.search import run_search
    from autopeft.settings import SearchSettings
    from autopeft.store import Store

    model = tiny_model_dir("bert", tmp_path / "bert")
    db = f"sqlite:///{tmp_path}/p.db"
    ray = init_ray(num_cpus=2)  # a private local Ray on free ports; run_search joins it
    lines: list[str] = []
    messages: list[dict] = []
    try:
        # 2 epochs of 80 steps, ASHA: an intermediate dev evaluation after epoch 1
        run_search(SearchSettings(
            task="glue/sst2", model=str(model), space="quick", study="live", storage=db,
            budget=Budget(epochs=2, trials=2), sampler="random", scheduler="asha",
            train_samples=640, eval_samples=16, batch_size=8, max_length=32,
            profile="none", cpus_per_trial=1, save_adapters="none"),
            say=lines.append, progress=messages.append)
    finally:
        ray.shutdown()

    rows = {r.number: r for r in Store(db).trials("live")}
    assert messages[0] == {"kind": "search", "study": "live", "total": 2, "metric": "accuracy"}
    for number, row in rows.items():
        mine = [m for m in messages if m.get("trial") == number]
        kinds = [m["kind"] for m in mine]
        # a worker's messages arrive in the order it sent them; the driver's `stored` comes
        # after a drain, normally last (a push still in flight may land after it)
        assert kinds[0] == "start" and mine[0]["method"] == row.method, kinds
        steps = [m["step"] for m in mine if m["kind"] in ("step", "eval")]
        assert steps and steps == sorted(steps), steps
        assert [m["step"] for m in mine if m["kind"] == "eval"] == [80]
        assert all(m["total_steps"] == 160 for m in mine if m["kind"] == "step")
        assert all(m["memory_bytes"] > 0 and m["peak_bytes"] >= m["memory_bytes"]
                   for m in mine if m["kind"] in ("step", "eval"))
        assert {"kind": "stored", "trial": number, "status": row.status,
                "metric": row.primary_metric} in mine
        if row.status == "completed":  # (ASHA may have stopped one after its evaluation)
            assert steps[-1] == 160
            (end,) = [m for m in mine if m["kind"] == "end"]
            assert (end["status"], end["step"], end["metric"]) == (
                "completed", row.steps, row.primary_metric)
    # the stored rows are those of a search without progress: one per trial, all fields
    assert len(rows) == 2 and all(r.trainable_params and r.peak_memory_bytes
                                  for r in rows.values())
    assert [ln.split("]")[0] for ln in lines if ln.startswith("[")] == ["[1/2", "[2/2"]
