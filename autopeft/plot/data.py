"""What ``autopeft plot`` draws, as plain data: one function for every renderer.

:func:`plot_data` turns a study's trial rows and front rows (the dicts of
:func:`autopeft.report.trial_rows`) into points, the front's step line, error bars and the
strip of trials that have no metric. The matplotlib and plotly renderers only draw what it
returns, so a PNG and an HTML page of the same study cannot disagree. Importing this module
loads numpy only.

Rows of the front may carry ``seeds`` (repeats over seeds), ``metric_std`` (the primary
metric's standard deviation over them) and ``tied_with`` (trial numbers tied within noise):
confirmed points get error bars from ``metric_std``; rows without these keys plot as single
runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autopeft.pareto import direction_sign, pareto_mask
from autopeft.status import TrialStatus

# matplotlib's tab10 then tab20's light shades, written out so that both renderers (and
# this module, which imports neither library) use the same colour for a method.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)
# After 20 methods colours repeat with the next marker shape (names both renderers map).
MARKERS = ("circle", "square", "triangle", "diamond")
MiB = 2**20


@dataclass(frozen=True)
class XAxis:
    """One choice of ``--x``: which row column, its label, and how it is scaled."""

    column: str
    label: str
    log: bool
    scale: float = 1.0  # plotted value = stored value * scale


X_AXES: dict[str, XAxis] = {
    "trainable_params": XAxis("trainable_params", "trainable parameters", log=True),
    "peak_memory": XAxis("peak_memory_bytes", "peak memory (MiB)", log=False, scale=1 / MiB),
}


@dataclass(frozen=True)
class Point:
    """One trial as drawn.

    Attributes:
        number: Trial number.
        method: Method name (the colour's key).
        status: The trial's status.
        x: Plotted x (scaled), or None when the trial has no value for the x axis.
        y: Primary metric, or None for trials with no metric (drawn on the strip).
        yerr: Standard deviation of the metric over seeds (confirmed points), else None.
        seeds: How many seeds the metric is averaged over (None: one run, not repeated).
        on_front: On the study's Pareto front (all its objectives, not only the two drawn).
        text: What hovering shows: trial, method, effective params, metric, x, status.
    """

    number: int
    method: str
    status: str
    x: float | None
    y: float | None
    yerr: float | None = None
    seeds: int | None = None
    on_front: bool = False
    text: str = ""


@dataclass(frozen=True)
class PlotData:
    """Everything a renderer needs; see :func:`plot_data`.

    Attributes:
        colors, markers: Per method, for points and strip alike.
        points: Trials with a metric and an x value, by number.
        front_line: Vertices of the front's step line in the two plotted objectives.
        strip: Trials without a metric (failed, infeasible, out of memory, ...) that have an
            x value (infeasible ones: their planned parameters or predicted memory).
        lanes: The strip's rows, one per status, in :class:`TrialStatus` order.
        labels: ``(x, y, "#n")`` beside front points (one per spot).
        notes: Lines that say what could not be drawn.
    """

    title: str
    x_label: str
    y_label: str
    x_log: bool
    colors: dict[str, str]
    markers: dict[str, str]
    points: list[Point]
    front_line: list[tuple[float, float]]
    strip: list[Point]
    lanes: list[str]
    labels: list[tuple[float, float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _params_text(params: Any) -> str:
    if not params:
        return "no parameters"
    return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                    for k, v in params.items())


def _describe(row: Mapping, primary: str, y: float | None, yerr: float | None,
              seeds: int | None, tied: Sequence[int]) -> str:
    lines = [f"trial {row['number']}: {row.get('method')} ({row.get('status')})",
             _params_text(row.get("params"))]
    if row.get("learning_rate") is not None:
        lines.append(f"learning rate {row['learning_rate']:.3g}")
    if y is not None:
        spread = "" if yerr is None else f" ± {yerr:.4f}"
        over = f" over {seeds} seeds" if seeds else ""
        lines.append(f"{primary} {y:.4f}{spread}{over}")
    if _number(row.get("trainable_params")) is not None:
        lines.append(f"{int(row['trainable_params']):,} trainable parameters")
    if _number(row.get("peak_memory_bytes")) is not None:
        lines.append(f"peak memory {row['peak_memory_bytes'] / MiB:,.1f} MiB")
    if tied:
        lines.append("tied within noise with " + ", ".join(f"#{n}" for n in tied))
    if row.get("reason"):
        lines.append(str(row["reason"]))
    return "\n".join(lines)


def step_line(points: Sequence[tuple[float, float]], direction: str) -> list[tuple[float, float]]:
    """The staircase of the 2-D non-dominated points (smaller x better, y in ``direction``).

    Vertices in order of x: each point's metric holds until the next point's x, where the
    line steps to that point's metric. Points another one dominates in these two coordinates
    are not on the line (they can be on the front through a third objective).
    """
    if not points:
        return []
    values = np.array(points, dtype=float)
    keep = pareto_mask(values, ["minimize", direction])
    sign = direction_sign(direction)
    # by x, and among equal x the best metric first: the staircase climbs from it
    ordered = sorted({(x, y) for (x, y), k in zip(points, keep, strict=True) if k},
                     key=lambda p: (p[0], sign * p[1]))
    line = [ordered[0]]
    for x, y in ordered[1:]:
        if x != line[-1][0]:
            line.append((x, line[-1][1]))  # the horizontal run up to this x
        line.append((x, y))
    return line


def plot_data(
    trials: Sequence[Mapping],
    front: Sequence[Mapping],
    *,
    x: str = "trainable_params",
    primary: str = "primary_metric",
    direction: str = "maximize",
    title: str = "",
) -> PlotData:
    """Points, front line, error bars and strip of one study.

    Args:
        trials: One row per trial (every status), with ``number``, ``method``, ``params``,
            ``status``, the ``primary`` column, ``trainable_params`` and ``peak_memory_bytes``.
        front: The rows of the Pareto front (same keys; may carry ``seeds``, ``metric_std``
            and ``tied_with``). Their metric is the one drawn for those trials.
        x: A key of :data:`X_AXES`.
        primary: Name of the primary metric's column in the rows.
        direction: The primary metric's direction (``maximize``/``minimize``).
        title: The plot's title.

    Raises:
        ValueError: ``x`` is not a key of :data:`X_AXES`.
    """
    if x not in X_AXES:
        raise ValueError(f"unknown x axis {x!r}; one of {', '.join(X_AXES)}")
    axis = X_AXES[x]
    on_front = {int(r["number"]): r for r in front}
    methods = sorted({str(r.get("method")) for r in trials} | {str(r.get("method")) for r in front})
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}
    markers = {m: MARKERS[(i // len(PALETTE)) % len(MARKERS)] for i, m in enumerate(methods)}
    points: list[Point] = []
    strip: list[Point] = []
    no_x: list[int] = []
    rows = {int(r["number"]): r for r in trials}
    rows.update({n: {**rows.get(n, {}), **r} for n, r in on_front.items()})
    for number in sorted(rows):
        row = rows[number]
        raw_x = _number(row.get(axis.column))
        px = None if raw_x is None or (axis.log and raw_x <= 0) else raw_x * axis.scale
        status = str(row.get("status"))
        completed = status == TrialStatus.COMPLETED
        y = _number(row.get(primary)) if completed else None
        yerr = _number(row.get("metric_std")) if y is not None else None
        seeds = row.get("seeds") if isinstance(row.get("seeds"), int) else None
        tied = [int(n) for n in row.get("tied_with") or ()]
        point = Point(number=number, method=str(row.get("method")), status=status, x=px, y=y,
                      yerr=yerr, seeds=seeds, on_front=number in on_front,
                      text=_describe(row, primary, y, yerr, seeds, tied))
        if px is None:
            no_x.append(number)
        elif y is not None:
            points.append(point)
        else:
            strip.append(point)
    order = [s.value for s in TrialStatus]
    lanes = sorted({p.status for p in strip},
                   key=lambda s: (order.index(s) if s in order else len(order), s))
    front_xy = [(p.x, p.y) for p in points if p.on_front]
    # "#n" beside each front point; trials drawn at the same spot share one label
    at: dict[tuple[float, float], list[int]] = {}
    for p in points:
        if p.on_front:
            at.setdefault((p.x, p.y), []).append(p.number)
    labels = [(px, py, ",".join(f"#{n}" for n in ns)) for (px, py), ns in at.items()]
    notes = []
    if no_x:
        shown = ", ".join(f"#{n}" for n in no_x[:8]) + (" ..." if len(no_x) > 8 else "")
        notes.append(f"{len(no_x)} trial(s) with no {axis.label} are not drawn: {shown}")
    if not points:
        notes.append("no completed trial to plot yet")
    return PlotData(title=title, x_label=axis.label, y_label=primary, x_log=axis.log,
                    colors=colors, markers=markers, points=points,
                    front_line=step_line(front_xy, direction), strip=strip, lanes=lanes,
                    labels=labels, notes=notes)


def study_plot_data(store: Any, study_name: str, x: str = "trainable_params") -> PlotData:
    """:func:`plot_data` of a stored study: every trial, and the front recomputed."""
    from autopeft.front import front_trials
    from autopeft.report import front_rows, trial_rows

    study = store.require_study(study_name)
    primary = study.primary
    trials = trial_rows(store.trials(study_name), detailed=False, primary=primary)
    # seeds, metric_std (error bars) and tied_with come with the front's rows
    front = front_rows(front_trials(store, study_name), detailed=False, primary=primary)
    title = f"{study_name}: {study.task} on {study.model}"
    return plot_data(trials, front, x=x, primary=primary, direction=study.primary_direction,
                     title=title)
