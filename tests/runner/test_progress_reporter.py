"""The trial-side progress reporter: its throttling, its messages, and run_trial's calls."""

from __future__ import annotations

import pytest

from autopeft.runner.progress import Reporter, TrialProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _reporter(sent, clock, **kw):
    return Reporter(sent.append, {"trial": 3, "method": "lora", "predicted_bytes": 2**30},
                    interval=1.0, clock=clock, **kw)


def test_step_messages_are_throttled_to_one_per_interval():
    clock, sent = FakeClock(), []
    rep = _reporter(sent, clock)
    rep.start()
    for step in range(1, 41):  # 40 steps of 1/8 s (exact in binary): 5 s
        clock.now += 0.125
        rep.step(step, 100)
    assert [m["kind"] for m in sent] == ["start"] + ["step"] * 5
    assert [m["step"] for m in sent[1:]] == [8, 16, 24, 32, 40]
    # steps per second since the previous message
    assert [m["steps_per_s"] for m in sent[1:]] == [8.0] * 5


def test_messages_carry_the_trial_fields_and_what_is_known_so_far():
    clock, sent = FakeClock(), []
    rep = _reporter(sent, clock)
    rep.start()
    assert sent[0] == {"kind": "start", "trial": 3, "method": "lora", "predicted_bytes": 2**30,
                       "phase": "loading", "step": 0, "total_steps": None,
                       "steps_per_s": None, "metric": None}
    rep.measure(lambda: (300 * 2**20, 400 * 2**20))
    clock.now += 2.0
    rep.step(8, 16)
    assert sent[-1] == {"kind": "step", "trial": 3, "method": "lora", "predicted_bytes": 2**30,
                        "phase": "training", "step": 8, "total_steps": 16, "steps_per_s": 4.0,
                        "metric": None, "memory_bytes": 300 * 2**20, "peak_bytes": 400 * 2**20}
    # an evaluation (told when it is done) is always sent, however soon; the steps/s
    # window restarts there, so its seconds are not counted as training
    clock.now += 5.0
    rep.evaluated(8, 0.75)
    assert (sent[-1]["kind"], sent[-1]["step"], sent[-1]["metric"]) == ("eval", 8, 0.75)
    clock.now += 0.5
    rep.step(9, 16)
    assert len(sent) == 3  # 0.5 s after the last message: held back
    clock.now += 0.5
    rep.step(10, 16)
    assert (sent[-1]["step"], sent[-1]["steps_per_s"], sent[-1]["metric"]) == (10, 2.0, 0.75)
    rep.evaluating()
    assert (sent[-1]["kind"], sent[-1]["phase"]) == ("step", "evaluating")
    rep.finished("completed", 0.8, 16)
    assert sent[-1]["kind"] == "end"
    assert (sent[-1]["status"], sent[-1]["metric"], sent[-1]["step"], sent[-1]["phase"]) == (
        "completed", 0.8, 16, "done")


def test_a_failed_trial_ends_with_its_status_and_keeps_its_last_metric():
    clock, sent = FakeClock(), []
    rep = _reporter(sent, clock)
    rep.start()
    rep.evaluated(4, 0.6)
    rep.finished("oom", None, None)
    assert (sent[-1]["status"], sent[-1]["metric"], sent[-1]["step"]) == ("oom", 0.6, 4)


def test_a_gone_watcher_silences_the_reporter_without_failing_the_trial():
    clock, calls = FakeClock(), []

    def send(message):
        calls.append(message)
        raise ConnectionError("driver gone")

    rep = Reporter(send, {"trial": 0}, clock=clock)
    rep.start()
    for step in range(1, 5):
        clock.now += 2.0
        rep.step(step, 4)
    rep.finished("completed", 0.5, 4)
    assert len(calls) == 1  # tried once, then quiet


def test_a_failing_meter_costs_only_the_reading():
    clock, sent = FakeClock(), []
    rep = _reporter(sent, clock)

    def broken():
        raise RuntimeError("no /proc")

    rep.measure(broken)
    rep.start()
    assert sent[-1]["kind"] == "start" and "memory_bytes" not in sent[-1]


@pytest.mark.usefixtures("shared_data")
def test_run_trial_tells_its_progress(tmp_path):
    from autopeft.runner.config import TrialConfig
    from autopeft.runner.trial import run_trial
    from autopeft.testing import tiny_model_dir

    class Recorder(TrialProgress):
        def __init__(self):
            self.calls = []

        def start(self):
            self.calls.append(("start",))

        def measure(self, memory):
            self.memory = memory

        def step(self, step, total):
            self.calls.append(("step", step, total))

        def evaluated(self, step, metric):
            self.calls.append(("eval", step, metric))

        def evaluating(self):
            self.calls.append(("evaluating",))

        def finished(self, status, metric, steps):
            self.calls.append(("end", str(status), metric, steps))

    model = tiny_model_dir("bert", tmp_path / "bert")
    cfg = TrialConfig(task="glue/sst2", model=str(model), method="lora", epochs=2,
                      batch_size=8, max_length=32, train_samples=32, eval_samples=16)
    partial = []
    rec = Recorder()
    result = run_trial(cfg, report=partial.append, progress=rec)
    assert result.status == "completed"
    assert rec.calls[0] == ("start",)
    assert [c for c in rec.calls if c[0] == "step"] == [("step", s, 8) for s in range(1, 9)]
    assert [c[:2] for c in rec.calls if c[0] == "eval"] == [("eval", 4)]
    assert rec.calls[-2:] == [("evaluating",), ("end", "completed", result.primary_metric, 8)]
    current, peak = rec.memory()
    assert 0 < current <= peak
