"""plot_data: the one preparation both renderers draw from (points, front line, bars, strip)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopeft.plot import X_AXES, plot_data, step_line
from autopeft.plot.data import PALETTE


def test_points_strip_and_notes(trials, front):
    data = plot_data(trials, front, primary="accuracy", title="t")
    assert [p.number for p in data.points] == [0, 1, 2, 3, 8]
    assert [(p.x, p.y) for p in data.points] == [
        (300_000, 0.80), (20_000, 0.74), (300_000, 0.78), (22_000_000, 0.79), (20_000, 0.74)]
    assert {p.number for p in data.points if p.on_front} == {0, 1, 3, 8}
    # no metric, or a metric of a trial that did not complete: the strip, at planned params
    assert [(p.number, p.status, p.x, p.y) for p in data.strip] == [
        (4, "failed", 300_000, None), (5, "infeasible", 10_000, None),
        (6, "oom", 600_000, None), (9, "pruned", 150_000, None)]
    assert data.lanes == ["failed", "infeasible", "oom", "pruned"]  # TrialStatus order
    assert data.notes == ["2 trial(s) with no trainable parameters are not drawn: #7, #10"]
    assert data.x_log and data.x_label == "trainable parameters" and data.y_label == "accuracy"
    # every trial is drawn once or named in a note
    assert len(data.points) + len(data.strip) + 2 == len(trials)


def test_front_line_is_the_staircase_of_the_drawn_front(trials, front):
    data = plot_data(trials, front, primary="accuracy")
    # #3 is on the 3-objective front (least memory) but dominated here by #0: ringed, not
    # a corner of the line; #1 and #8 are the same point
    assert data.front_line == [(20_000, 0.74), (300_000, 0.74), (300_000, 0.80)]
    assert sorted(data.labels) == [(20_000, 0.74, "#1,#8"), (300_000, 0.80, "#0"),
                                   (22_000_000, 0.79, "#3")]


def test_peak_memory_axis_is_in_mib_and_linear(trials, front):
    data = plot_data(trials, front, x="peak_memory", primary="accuracy")
    assert not data.x_log and data.x_label == "peak memory (MiB)"
    by = {p.number: p.x for p in data.points + data.strip}
    assert by[0] == 900 and by[5] == 30_000 and by[10] == 100 and by[7] == 800
    assert 4 not in by  # failed before measuring: no memory, so only named in a note
    assert data.notes == ["1 trial(s) with no peak memory (MiB) are not drawn: #4"]
    # memory front: #3 (700 MiB, 0.79) then #0 (900 MiB, 0.80)
    assert data.front_line == [(700, 0.79), (900, 0.79), (900, 0.80)]


def test_methods_keep_one_colour_everywhere(trials, front, row):
    data = plot_data(trials, front, primary="accuracy")
    assert list(data.colors) == sorted({r["method"] for r in trials})
    assert len(set(data.colors.values())) == len(data.colors)
    assert data.colors == plot_data(trials, front, x="peak_memory", primary="accuracy").colors
    many = [row(i, f"m{i:02d}", "completed", 0.5, 10 + i, 1) for i in range(25)]
    wide = plot_data(many, [], primary="accuracy")
    assert wide.colors["m20"] == PALETTE[0] and wide.markers["m20"] != wide.markers["m00"]
    assert len({(wide.colors[m], wide.markers[m]) for m in wide.colors}) == 25


def test_confirmed_points_carry_error_bars_and_ties(trials, front):
    confirmed = [{**trials[0], "accuracy": 0.79, "seeds": 3, "metric_std": 0.012,
                  "tied_with": [3]},
                 {**trials[3], "seeds": 3, "metric_std": None, "tied_with": [0]},
                 trials[1]]
    data = plot_data(trials, confirmed, primary="accuracy")
    by = {p.number: p for p in data.points}
    # the front row's metric (mean over seeds) is the one drawn
    assert (by[0].y, by[0].yerr, by[0].seeds) == (0.79, 0.012, 3)
    assert "0.7900 ± 0.0120 over 3 seeds" in by[0].text
    assert "tied within noise with #3" in by[0].text
    assert by[3].yerr is None and by[3].seeds == 3  # repeated, spread unknown: no bar
    assert "accuracy 0.7900 over 3 seeds" in by[3].text
    assert by[1].yerr is None and by[1].seeds is None  # a single run (no noise keys)
    assert by[2].yerr is None and not by[2].on_front
    # a row without any noise key plots exactly as before the keys existed
    plain = plot_data(trials, front, primary="accuracy")
    assert all(p.yerr is None and p.seeds is None for p in plain.points)


def test_hover_text_names_trial_method_params_and_values(trials, front):
    text = {p.number: p.text for p in plot_data(trials, front, primary="accuracy").points
            + plot_data(trials, front, primary="accuracy").strip}
    assert text[0].splitlines()[:3] == ["trial 0: lora (completed)", "r=8",
                                        "learning rate 0.001"]
    assert "accuracy 0.8000" in text[0] and "300,000 trainable parameters" in text[0]
    assert "peak memory 900.0 MiB" in text[0]
    assert "predicted peak 29.3 GiB" in text[5] and "accuracy" not in text[5]


def test_minimised_metric_and_bad_axis(row):
    losses = [row(i, "lora", "completed", loss, params, 1)
              for i, (loss, params) in enumerate([(0.9, 10), (0.5, 100), (0.7, 50), (0.2, 1000)])]
    data = plot_data(losses, losses, primary="accuracy", direction="minimize")
    assert data.front_line == [(10, 0.9), (50, 0.9), (50, 0.7), (100, 0.7), (100, 0.5),
                               (1000, 0.5), (1000, 0.2)]
    with pytest.raises(ValueError, match="unknown x axis 'memory'"):
        plot_data(losses, losses, x="memory")
    assert set(X_AXES) == {"trainable_params", "peak_memory"}


def test_empty_study():
    data = plot_data([], [], primary="accuracy")
    assert data.points == data.strip == data.front_line == [] and data.lanes == []
    assert data.notes == ["no completed trial to plot yet"]


def _best_so_far(points, x, sign):
    """Brute force: the best metric of the points at or left of x (None: none there)."""
    ys = [py for px, py in points if px <= x]
    return None if not ys else (max(ys) if sign < 0 else min(ys))


def _line_at(line, x):
    """The step line's value at x: the last vertex at or left of it (the step's top)."""
    before = [v for v in line if v[0] <= x]
    return before[-1][1] if before else None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(0, 20)), max_size=25),
       st.sampled_from(["maximize", "minimize"]))
def test_step_line_is_the_best_metric_for_at_most_x(raw, direction):
    points = [(float(x), y / 20) for x, y in raw]
    line = step_line(points, direction)
    sign = -1 if direction == "maximize" else 1
    xs = sorted({x for x, _ in points} | {0.5, 31.0})
    for x in xs:
        assert _line_at(line, x) == _best_so_far(points, x, sign), (x, line)
    # vertices alternate horizontal and vertical runs, x never decreases, y only improves
    for (x0, y0), (x1, y1) in zip(line, line[1:], strict=False):
        assert x1 >= x0 and (x0 == x1) != (y0 == y1)
        assert sign * (y1 - y0) <= 0
    corners = {v for i, v in enumerate(line) if i == 0 or line[i - 1][0] == v[0]}
    assert corners <= set(points)
    assert all(math.isfinite(c) for v in line for c in v)
