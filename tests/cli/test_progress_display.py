"""The search's progress displays, fed a scripted sequence of progress messages."""

from __future__ import annotations

import io
import pickle
import re

from rich.console import Console

from autopeft.cli.progress import LiveDisplay, PlainDisplay, SearchState, make_display

GIB = 2**30
MIB = 2**20


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _trial(number, method, **fields):
    base = {"trial": number, "method": method, "params": {}, "learning_rate": 1e-3,
            "predicted_bytes": GIB, "phase": "loading", "step": 0, "total_steps": None,
            "steps_per_s": None, "metric": None}
    return {**base, **fields}


def _script():
    """(seconds since the search began, message) of a search of 4 trials."""
    return [
        (0, {"kind": "search", "study": "demo", "total": 4, "metric": "accuracy"}),
        (1, {"kind": "start", **_trial(0, "lora")}),
        (2, {"kind": "start", **_trial(1, "ia3", predicted_bytes=None)}),
        (10, {"kind": "step", **_trial(0, "lora", phase="training", step=50, total_steps=100,
                                       steps_per_s=5.0, memory_bytes=300 * MIB,
                                       peak_bytes=350 * MIB)}),
        (20, {"kind": "eval", **_trial(0, "lora", phase="training", step=50, total_steps=100,
                                       steps_per_s=5.0, metric=0.71875,
                                       memory_bytes=310 * MIB, peak_bytes=360 * MIB)}),
        (21, {"kind": "step", **_trial(1, "ia3", phase="training", step=10, total_steps=100,
                                       steps_per_s=0.5, memory_bytes=2 * GIB,
                                       peak_bytes=3 * GIB, predicted_bytes=None)}),
        (30, {"kind": "end", "status": "completed", **_trial(0, "lora", phase="done", step=100,
                                                              total_steps=100, metric=0.8)}),
        (30, {"kind": "stored", "trial": 0, "status": "completed", "metric": 0.8}),
        (31, {"kind": "start", **_trial(2, "bitfit")}),
        (40, {"kind": "end", "status": "failed", **_trial(2, "bitfit", phase="done")}),
        (40, {"kind": "stored", "trial": 2, "status": "failed", "metric": None}),
        # a late step of a stored trial (a push still in flight) does not bring it back
        (41, {"kind": "step", **_trial(2, "bitfit", phase="training", step=3)}),
    ]


def _play(display, clock, until=None):
    for t, msg in _script():
        if until is not None and t > until:
            break
        clock.now = t
        display.handle(msg)


def _summary(head: str) -> str:
    return re.search(r"\d+/\d+ trials.*", head).group().strip()


def test_the_live_display_shows_the_search_and_each_running_trial():
    clock = FakeClock()
    console = Console(record=True, width=100)
    display = LiveDisplay(console, clock=clock)
    for t, msg in _script():
        clock.now = t
        display.state.apply(msg)  # the state alone: no live thread in this test
        if t == 21:
            console.print(display.render())
    console.print(display.render())
    text = console.export_text()
    frames = [f.rstrip().splitlines() for f in text.split("search demo")[1:]]
    # at t=21: two trials running, half and a tenth done: 0.6 of 4 trials in 21 s
    assert _summary(frames[0][0]) == "0/4 trials  0:21 elapsed  ETA 1:59"
    assert [" ".join(line.split()) for line in frames[0][1:]] == [
        "trial method step steps/s accuracy memory peak predicted",
        "0 lora 50/100 5.0 0.7188 310 MiB 360 MiB 1.00 GiB",
        "1 ia3 10/100 0.5 - 2.00 GiB 3.00 GiB -",
    ]
    # at the end: trials 0 and 2 stored (one completed, one failed), trial 1 still runs:
    # 2.1 of 4 trials in 41 s
    assert _summary(frames[1][0]) == "2/4 trials  0:41 elapsed  ETA 0:37"
    assert [" ".join(line.split()) for line in frames[1][1:]] == [
        "trial method step steps/s accuracy memory peak predicted",
        "1 ia3 10/100 0.5 - 2.00 GiB 3.00 GiB -",
    ]
    assert all(len(line) <= 100 for line in text.splitlines())


def test_the_live_display_starts_with_the_search_and_prints_lines_above_it():
    clock = FakeClock()
    console = Console(record=True, width=100, force_terminal=True)
    with LiveDisplay(console, clock=clock) as display:
        display.say("task glue/sst2: 64 train / 32 eval examples")  # before any trial
        assert display._live is None
        _play(display, clock, until=10)
        assert display._live is not None and display._live.is_started
        display.say("[1/4] trial 0 lora | accuracy=0.8000")
    assert display._live is None
    text = console.export_text()
    assert text.index("task glue/sst2") < text.index("search demo")
    assert "[1/4] trial 0 lora | accuracy=0.8000" in text
    assert "50/100" in text


def test_plain_lines_when_output_is_no_terminal():
    clock, lines = FakeClock(), []
    display = PlainDisplay(lines.append, every=15, clock=clock)
    _play(display, clock)
    assert lines == [
        "trial 0 started: lora lr=1.0e-03 (predicted 1.00 GiB)",
        "trial 1 started: ia3 lr=1.0e-03",
        # trial 0's step at t=10 is within 15 s of its start line; its eval at t=20 is not
        "trial 0 lora: step 50/100, 5.0 steps/s, accuracy=0.7188, memory 310 MiB "
        "(peak 360 MiB, predicted 1.00 GiB)",
        "trial 1 ia3: step 10/100, 0.5 steps/s, accuracy=-, memory 2.00 GiB "
        "(peak 3.00 GiB, predicted -)",
        # ends are the driver's own lines; a stored trial's late messages print nothing
        "trial 2 started: bitfit lr=1.0e-03 (predicted 1.00 GiB)",
    ]


def test_auto_is_live_on_a_terminal_and_plain_otherwise():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(make_display("auto", stream=Tty()), LiveDisplay)
    assert isinstance(make_display("auto", stream=io.StringIO()), PlainDisplay)
    assert isinstance(make_display("live", stream=io.StringIO()), LiveDisplay)
    assert isinstance(make_display("plain", stream=Tty()), PlainDisplay)
    assert make_display("off") is None


def test_displays_pickle_to_nothing_live():
    """Tune pickles the searcher and callbacks that hold ``say`` and ``handle``."""
    for display in (LiveDisplay(Console(file=io.StringIO())), PlainDisplay(print)):
        assert pickle.loads(pickle.dumps(display.handle)) is not None


def test_eta_is_unknown_before_any_progress():
    clock = FakeClock()
    state = SearchState(clock)
    state.apply({"kind": "search", "study": "s", "total": 3, "metric": "accuracy"})
    clock.now = 50
    assert state.eta() is None
    state.apply({"kind": "stored", "trial": 0, "status": "completed", "metric": 0.5})
    assert state.eta() == 100.0
