"""Draw a :class:`~autopeft.plot.data.PlotData` to PNG, SVG or self-contained HTML.

Library choice (the lead's): matplotlib for PNG and SVG, through its Agg canvas (no display,
no browser, no pyplot global state); plotly for HTML, because its page is interactive
(hover shows each trial's method, parameters and values) and can carry plotly.js inline, so
the file works offline. Both only draw what :func:`~autopeft.plot.data.plot_data` prepared.
Each library is imported when its format is asked for.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from autopeft.plot.data import PlotData, Point

SUFFIXES = (".png", ".svg", ".html")
_MPL_MARKERS = {"circle": "o", "square": "s", "triangle": "^", "diamond": "D"}
_PLOTLY_MARKERS = {"circle": "circle", "square": "square", "triangle": "triangle-up",
                   "diamond": "diamond"}
FRONT_COLOR = "#222222"


def write_plot(data: PlotData, path: str | Path) -> Path:
    """Draw ``data`` to ``path``; the suffix picks the format (``.png``, ``.svg``, ``.html``).

    The file is written beside its final name and renamed into place, so a failure never
    leaves a half-written plot (and an existing file is replaced only by a whole one).

    Raises:
        ValueError: The suffix is not one of :data:`SUFFIXES`.
        OSError: The folder is missing or not writable.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"unknown plot format {path.suffix or '(none)'!r}; use one of "
                         f"{', '.join(SUFFIXES)}")
    if not path.parent.is_dir():  # before drawing, which takes a while
        raise FileNotFoundError(2, "no such folder", str(path.parent))
    # a unique name beside the target, created by the library as any file it writes
    # (so the user's umask applies), then renamed over the target in one step
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{suffix}")
    try:
        if suffix == ".html":
            _plotly_figure(data).write_html(str(tmp), include_plotlyjs=True, full_html=True)
        else:
            _matplotlib_figure(data).savefig(str(tmp), format=suffix[1:], dpi=150,
                                             bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _by_method(points: list[Point]) -> dict[str, list[Point]]:
    groups: dict[str, list[Point]] = {}
    for p in points:
        groups.setdefault(p.method, []).append(p)
    return dict(sorted(groups.items()))  # the legend in the colours' order


# -- matplotlib ---------------------------------------------------------------------------


def _matplotlib_figure(data: PlotData) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no backend switching, no global figures

    strip = bool(data.strip)
    fig = Figure(figsize=(9, 6.5 if strip else 5.5), layout="constrained")
    if strip:
        ax, lane_ax = fig.subplots(2, 1, sharex=True, height_ratios=[5, 1 + 0.25 * len(data.lanes)])
    else:
        ax, lane_ax = fig.subplots(1, 1), None
    for method, pts in _by_method(data.points).items():
        marker = _MPL_MARKERS[data.markers[method]]
        ax.scatter([p.x for p in pts], [p.y for p in pts], color=data.colors[method],
                   marker=marker, s=36, label=method, zorder=3,
                   edgecolors=[FRONT_COLOR if p.on_front else "none" for p in pts],
                   linewidths=1.4)
        bars = [p for p in pts if p.yerr is not None]
        if bars:
            ax.errorbar([p.x for p in bars], [p.y for p in bars], yerr=[p.yerr for p in bars],
                        fmt="none", ecolor=data.colors[method], elinewidth=1.2, capsize=3,
                        zorder=2)
    if data.front_line:
        ax.plot(*zip(*data.front_line, strict=True), color=FRONT_COLOR, linewidth=1.2,
                zorder=1, label="Pareto front")
    for x, y, text in data.labels:
        ax.annotate(text, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
    ax.scatter([], [], facecolors="none", edgecolors=FRONT_COLOR, linewidths=1.4, s=36,
               label="ringed: on the front")
    ax.set_ylabel(data.y_label)
    ax.set_title(data.title)
    ax.grid(True, alpha=0.3)
    if data.x_log:
        ax.set_xscale("log")
    if data.points or data.front_line:
        ax.legend(fontsize=8, loc="best")
    bottom = ax
    plotted = {p.method for p in data.points}
    if lane_ax is not None:
        lane = {s: i for i, s in enumerate(data.lanes)}
        for method, pts in _by_method(data.strip).items():
            lane_ax.scatter([p.x for p in pts], [lane[p.status] for p in pts], marker="x",
                            color=data.colors[method], s=30,
                            label=method if method not in plotted else None)
        lane_ax.set_yticks(range(len(data.lanes)), data.lanes, fontsize=8)
        lane_ax.set_ylim(-0.6, len(data.lanes) - 0.4)
        lane_ax.set_ylabel("no metric", fontsize=8)
        lane_ax.grid(True, axis="x", alpha=0.3)
        if {p.method for p in data.strip} - plotted:
            lane_ax.legend(fontsize=8, loc="upper right")
        bottom = lane_ax
    bottom.set_xlabel(data.x_label)
    if data.notes:
        fig.text(0.01, 0.0, "; ".join(data.notes), fontsize=7, ha="left", va="bottom")
    return fig


# -- plotly -------------------------------------------------------------------------------


def _html(text: str) -> str:
    import html

    return html.escape(text).replace("\n", "<br>")


def _plotly_figure(data: PlotData) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    strip = bool(data.strip)
    if strip:
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                            row_heights=[0.8, 0.2])
    else:
        fig = make_subplots(rows=1, cols=1)
    for method, pts in _by_method(data.points).items():
        has_err = any(p.yerr is not None for p in pts)
        fig.add_trace(go.Scatter(
            x=[p.x for p in pts], y=[p.y for p in pts], mode="markers", name=method,
            legendgroup=method, customdata=[p.number for p in pts],
            hovertext=[_html(p.text) for p in pts], hoverinfo="text",
            marker={"color": data.colors[method], "size": 9,
                    "symbol": _PLOTLY_MARKERS[data.markers[method]],
                    "line": {"color": [FRONT_COLOR if p.on_front else data.colors[method]
                                       for p in pts], "width": 1.5}},
            error_y={"type": "data", "array": [p.yerr or 0.0 for p in pts],
                     "visible": True} if has_err else None,
        ), row=1, col=1)
    if data.front_line:
        xs, ys = zip(*data.front_line, strict=True)
        fig.add_trace(go.Scatter(x=list(xs), y=list(ys), mode="lines", name="Pareto front",
                                 line={"color": FRONT_COLOR, "width": 1.5}, hoverinfo="skip"),
                      row=1, col=1)
    if data.labels:
        fig.add_trace(go.Scatter(
            x=[x for x, _, _ in data.labels], y=[y for _, y, _ in data.labels], mode="text",
            text=[t for _, _, t in data.labels], textposition="top right", hoverinfo="skip",
            showlegend=False, textfont={"size": 10}), row=1, col=1)
    if strip:
        plotted = {p.method for p in data.points}
        for method, pts in _by_method(data.strip).items():
            fig.add_trace(go.Scatter(
                x=[p.x for p in pts], y=[p.status for p in pts], mode="markers",
                name=method, legendgroup=method, showlegend=method not in plotted,
                customdata=[p.number for p in pts], hovertext=[_html(p.text) for p in pts],
                hoverinfo="text",
                marker={"color": data.colors[method], "symbol": "x", "size": 8},
            ), row=2, col=1)
        fig.update_yaxes(title_text="no metric", categoryorder="array",
                         categoryarray=data.lanes, row=2, col=1)
    fig.update_yaxes(title_text=data.y_label, row=1, col=1)
    fig.update_xaxes(title_text=data.x_label, row=2 if strip else 1, col=1)
    if data.x_log:
        fig.update_xaxes(type="log")
    notes = "<br>".join(_html(n) for n in data.notes)
    fig.update_layout(title={"text": _html(data.title) + (f"<br><sup>{notes}</sup>"
                                                          if notes else "")},
                      template="plotly_white", hovermode="closest", height=650)
    return fig
