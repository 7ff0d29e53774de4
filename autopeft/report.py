"""What ``autopeft front``, ``autopeft trials`` and ``autopeft studies`` print.

Rendering only: which trials form the front is :mod:`autopeft.front`'s business. Rows are
flat dicts of raw values (bytes, counts, dicts, datetimes); :func:`render` turns them into a
rich table for people (MiB, ``k=v`` params) or JSON/CSV for programs (bytes, real dicts).
Typical use::

    study = store.require_study(name)
    rows = trial_rows(front_trials(store, name), detailed=False, primary=study.primary)
    print(render(rows, "table", title=f"Pareto front of {name}"))
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from autopeft.methods.base import effective_params
from autopeft.store.models import StudySummary, TrialRecord

FORMATS = ("table", "json", "csv")

_LABELS = {
    "number": "#",
    "learning_rate": "lr",
    "trainable_params": "trainable",
    "total_params": "total params",
    "trainable_pct": "trainable %",
    "peak_memory_bytes": "peak memory",
    "memory_kind": "memory kind",
    "train_seconds": "train s",
    "eval_seconds": "eval s",
    "examples_per_second": "examples/s",
    "unparseable_predictions": "unparseable",
    "eval_examples": "eval examples",
    "is_pareto": "pareto",
    "space_name": "space",
    "n_trials": "trials",
    "n_completed": "completed",
    "best_primary": "best",
    "created_at": "created (UTC)",
    "finished_at": "finished (UTC)",
    "started_at": "started (UTC)",
    "memory_bytes": "memory",
    "usable_fraction": "usable",
    "usable_bytes": "usable memory",
    "budget_bytes": "budget per trial",
    "trials_per_device": "trials/device",
    "gpu_count": "gpus",
    "peak_tflops": "peak TFLOPS",
    "metric_std": "± std",
    "tied_with": "tied with",
}


# Table view only: which columns leave first when a table is wider than the terminal.
_DROP_ORDER = ("extra", "eval_examples", "eval_seconds", "steps", "memory_kind",
               "examples_per_second", "train_seconds", "started_at", "finished_at",
               "total_params", "learning_rate", "is_pareto", "created_at", "space_name",
               "objectives", "description", "usable_fraction", "peak_tflops",
               "trials_per_device")
_KEEP = {"number", "method", "params", "name", "status"}
_FOLD_AT = 20  # text columns may be narrower than a longer word: it folds onto the next line


class Rows(list):
    """A list of row dicts that also knows its columns (so empty results keep a header)
    and what to say in a table when there are no rows."""

    def __init__(self, rows: Iterable[dict], columns: Sequence[str], empty: str) -> None:
        super().__init__(rows)
        self.columns = list(columns)
        self.empty = empty


def trial_rows(
    trials: Sequence[TrialRecord], *, detailed: bool, primary: str = "primary_metric"
) -> Rows:
    """One flat dict per trial, columns in a fixed order.

    Args:
        trials: Trials to show, in the order to show them. ``params`` are the effective
            ones: the method's defaults overlaid with what was sampled.
        detailed: Add every metric, total params, memory kind, eval time, steps, the count
            of unparseable dev predictions (and of dev examples), times and ``extra``. Without
            it, the unparseable count is a column only when some trial has one.
        primary: Column name for the primary metric (the study's first objective).
    """
    base = ["number", "method", "params", "learning_rate", "status", "reason", primary]
    metric_keys = sorted({k for t in trials for k in t.metrics} - {primary}) if detailed else []
    taken = set(base) | set(TrialRecord.column_names()) | {"trainable_pct"}
    metric_cols = {k: (f"metric_{k}" if k in taken else k) for k in metric_keys}
    if detailed:
        tail = [
            "trainable_params",
            "total_params",
            "trainable_pct",
            "peak_memory_bytes",
            "memory_kind",
            "train_seconds",
            "eval_seconds",
            "examples_per_second",
            "steps",
            "unparseable_predictions",
            "eval_examples",
            "started_at",
            "finished_at",
            "is_pareto",
            "extra",
        ]
    else:
        tail = [
            "trainable_params",
            "trainable_pct",
            "peak_memory_bytes",
            "train_seconds",
            "examples_per_second",
            "is_pareto",
        ]
        if any(t.unparseable_predictions for t in trials):  # generated text that is no label
            tail.insert(tail.index("is_pareto"), "unparseable_predictions")
    columns = base + list(metric_cols.values()) + tail
    rows = []
    for t in trials:
        fraction = t.trainable_fraction
        row = {c: getattr(t, c) for c in base if c != primary}
        row["params"] = effective_params(t.method, t.params)  # defaults included
        row[primary] = t.primary_metric
        row.update({col: t.metrics.get(k) for k, col in metric_cols.items()})
        row.update({c: getattr(t, c) for c in tail if c != "trainable_pct"})
        row["trainable_pct"] = None if fraction is None else 100.0 * fraction
        rows.append({c: row[c] for c in columns})
    return Rows(rows, columns, empty="no trials")


def front_rows(front: Sequence[Any], *, detailed: bool, primary: str = "primary_metric") -> Rows:
    """:func:`trial_rows` of front points (:class:`autopeft.front.FrontTrial`) plus what the
    front knows of each: ``seeds`` (runs averaged), ``metric_std`` (the primary metric's
    standard deviation over them, None for one), ``tied_with`` (front trials within noise of
    this one) and, when ``detailed``, ``resolution`` (per objective, what counted as noise)."""
    rows = trial_rows(front, detailed=detailed, primary=primary)
    added = ["seeds", "metric_std", "tied_with"] + (["resolution"] if detailed else [])
    at = rows.columns.index(primary) + 1
    columns = rows.columns[:at] + added + rows.columns[at:]
    out = []
    for point, row in zip(front, rows, strict=True):
        row.update(seeds=point.seeds, metric_std=point.metric_std,
                   tied_with=list(point.tied_with), resolution=dict(point.resolution))
        out.append({c: row[c] for c in columns})
    return Rows(out, columns, empty="no trials")


def resolution_caption(front: Sequence[Any], objectives: Sequence[Sequence[str]]) -> str:
    """One line saying which differences the front treated as noise, per objective."""
    parts = []
    for i, (name, _) in enumerate(objectives):
        values = [p.resolution.get(name, 0.0) for p in front]
        lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
        memory = name in ("peak_memory", "peak_memory_bytes", "memory")
        if hi == 0:
            parts.append(f"{name} exact")
            continue
        fmt = (lambda v: f"{v / 2**20:.0f} MiB") if memory else (lambda v: f"{v:.3g}")
        span = fmt(hi) if fmt(lo) == fmt(hi) else f"{fmt(lo)}-{fmt(hi)}"
        why = ("the meter's run-to-run noise" if memory else
               "standard error on the dev set" if i == 0 else "resolution")
        parts.append(f"{name} ±{span} ({why})")
    return ("Within noise (not told apart): " + "; ".join(parts)
            + ". Means over seeds where confirmed.")


def study_rows(summaries: Sequence[StudySummary]) -> Rows:
    """One flat dict per study, as listed by ``autopeft studies``."""
    columns = [
        "name",
        "status",
        "task",
        "model",
        "space_name",
        "objectives",
        "n_trials",
        "n_completed",
        "best_primary",
        "created_at",
        "finished_at",
        "reason",
    ]
    rows = [
        {
            "name": s.name,
            "status": s.status,
            "task": s.task,
            "model": s.model,
            "space_name": s.space_name,
            "objectives": [list(o) for o in s.objectives],
            "n_trials": s.n_trials,
            "n_completed": s.n_completed,
            "best_primary": s.best_primary,
            "created_at": s.created_at,
            "finished_at": s.finished_at,
            "reason": s.status_reason,
        }
        for s in summaries
    ]
    return Rows(rows, columns, empty="no studies")


# -- rendering -------------------------------------------------------------------------


def render(
    rows: Sequence[dict],
    fmt: str,
    *,
    title: str | None = None,
    width: int | None = None,
    color: bool = False,
    caption: str | None = None,
) -> str:
    """Render rows as ``"table"`` (rich, for people), ``"json"`` or ``"csv"``.

    Args:
        rows: Row dicts, ideally :class:`Rows` (which carries the columns of empty results).
        fmt: ``"table"``, ``"json"`` or ``"csv"``.
        title: Table title (tables only).
        caption: Line under the table (tables only).
        width: Table width; defaults to the terminal's (160 when not a terminal). Related
            values share a cell, text wraps and minor columns are left out (named under the
            table) to fit it; a table that still cannot fit without cutting cells is
            rendered at its natural width.
        color: Emit ANSI styles (the CLI passes True only when stdout is a tty).
    """
    columns = list(getattr(rows, "columns", None) or dict.fromkeys(k for r in rows for k in r))
    if fmt == "json":
        return json.dumps([{c: _plain(r.get(c)) for c in columns} for r in rows], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_csv_cell(r.get(c)) for c in columns] for r in rows)
        return out.getvalue()
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")
    if not rows:
        empty = getattr(rows, "empty", "no rows")
        return f"{title}: {empty}\n" if title else f"{empty}\n"
    width = width or shutil.get_terminal_size((160, 24)).columns
    view = _fold(rows, columns)
    # Fit the width, never cutting a cell: wrap text at spaces; say constant columns once
    # below; leave out minor columns (_DROP_ORDER); then fold long words and leave out any
    # column from the right but the identifying ones (_KEEP).
    minor = [c for c in _DROP_ORDER if c in view.shown]
    hidden: list[str] = []
    notes: list[str] = []
    widths = _column_widths(view, width, fold=False)
    if widths is None:  # a text column that says the same in every row: said once, below
        for c, value in view.constant.items():
            view.shown.remove(c)
            notes.append(f"{view.labels[c]}: {value} (every row)")
        minor = [c for c in minor if c in view.shown]
        widths = _column_widths(view, width, fold=False)
    while widths is None and minor:
        hidden.append(minor.pop(0))
        view.shown.remove(hidden[-1])
        widths = _column_widths(view, width, fold=False)
    others = [c for c in reversed(view.shown) if c not in _KEEP]
    widths = widths if widths is not None else _column_widths(view, width, fold=True)
    while widths is None and others:
        hidden.append(others.pop(0))
        view.shown.remove(hidden[-1])
        widths = _column_widths(view, width, fold=True)
    if hidden:
        notes.append(f"not shown at this width: {', '.join(view.labels[c] for c in hidden)} "
                     "(-f json or -f csv has every column)")
    if caption:
        notes.insert(0, caption)
    table = Table(title=title, caption="\n".join(notes) or None, box=box.SIMPLE_HEAD,
                  highlight=False, caption_justify="left", pad_edge=False)
    for c in view.shown:
        table.add_column(view.labels[c], justify="right" if view.numeric[c] else "left",
                         width=(widths or {}).get(c), overflow="fold")
    for r, cell in zip(rows, view.cells, strict=True):
        style = "bold" if color and r.get("is_pareto") else None
        table.add_row(*(Text(cell[c]) for c in view.shown), style=style)
    text = _print(table, width, color)
    if "…" in text and not any("…" in str(v) for r in rows for v in r.values()):
        # Rich squeezed cells to "…" to fit the width; a report must not lose data, so use
        # the table's natural width instead (one line per row; page with `less -S`).
        natural = Console(file=io.StringIO(), width=100_000).measure(table).maximum
        text = _print(table, max(width, natural), color)
    return text


@dataclass
class _View:
    """A table's cells as text, after folding; ``shown`` shrinks to fit the width."""

    shown: list[str]
    cells: list[dict[str, str]]
    labels: dict[str, str]
    numeric: dict[str, bool]
    solid: set[str]  # columns whose cells are never wrapped (plain numbers)
    constant: dict[str, str] = field(default_factory=dict)  # text the same in every row


def _fold(rows: Sequence[dict], columns: list[str]) -> _View:
    """Cells for the table view: two related values in one cell ("300,000 (1.32%)",
    "lr=0.001 r=8", "failed: why") and empty columns left out; text columns that say the
    same in every row are noted, to be said once under a table too wide for them. JSON and
    CSV keep every column."""
    cells = [{c: _table_cell(c, r.get(c)) for c in columns} for r in rows]
    labels = {c: _LABELS.get(c, c) for c in columns}
    numeric = {c: any(_is_number(r.get(c)) for r in rows) for c in columns}
    drop: set[str] = set()
    for into, part, joined, label in (
        ("trainable_params", "trainable_pct", "{a} ({b})", "trainable (%)"),
        ("params", "learning_rate", "lr={b} {a}", "lr, params"),
        ("status", "reason", "{a}: {b}", "status"),
    ):
        if into in columns and part in columns:
            for cell in cells:
                if cell[part]:
                    cell[into] = joined.format(a=cell[into], b=cell[part]).strip()
            labels[into] = label
            drop.add(part)
    constant = {}
    for c in columns:
        values = {cell[c] for cell in cells}
        if c in drop:
            continue
        if values == {""}:
            drop.add(c)  # says nothing
        elif len(rows) > 1 and len(values) == 1 and not numeric[c] and (
                c == "status" or c not in _KEEP):
            constant[c] = values.pop()
    shown = [c for c in columns if c not in drop] or columns[:1]
    solid = {c for c in shown if numeric[c] and c not in ("trainable_params",)}
    return _View(shown, cells, labels, numeric, solid, constant)


def _column_widths(view: _View, width: int, *, fold: bool) -> dict[str, int] | None:
    """Widths for the wrapping columns so the table fits ``width``: {} when it fits as it
    is, None when it cannot. Text wraps at spaces (with ``fold``, a word longer than
    _FOLD_AT may be folded); numbers keep their width. Rich's own squeezing can shrink a
    column below its longest word and cut it with "…", hence this."""
    columns = view.shown
    overhead = 3 * len(columns) - 1  # SIMPLE_HEAD, pad_edge=False: edges, paddings, dividers
    texts = {c: [view.labels[c], *(cell[c] for cell in view.cells)] for c in columns}
    most = {c: max(cell_len(line) for v in texts[c] for line in v.splitlines() or [""])
            for c in columns}
    if sum(most.values()) + overhead <= width:
        return {}
    words = {c: max((cell_len(w) for v in texts[c] for w in v.split()), default=1)
             for c in columns}
    # a number keeps its cells whole (its header may wrap); text folds at _FOLD_AT
    least = {c: max(words[c], *(cell_len(cell[c]) for cell in view.cells)) if c in view.solid
             else min(_FOLD_AT, words[c]) if fold else words[c] for c in columns}
    room = width - overhead - sum(least.values())
    if room < 0:
        return None
    out = dict(least)
    # first unfold words (narrowest first), then share what is left by what each could use
    for c in sorted(columns, key=lambda c: words[c]):
        grow = min(room, max(0, min(words[c], most[c]) - out[c]))
        out[c] += grow
        room -= grow
    want = {c: most[c] - out[c] for c in columns if most[c] > out[c]}
    total = sum(want.values())
    for c, w in want.items():
        out[c] += w * room // total
    return {c: out[c] for c in columns if most[c] > least[c]}


def _print(table: Table, width: int, color: bool) -> str:
    console = Console(
        file=io.StringIO(),
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        emoji=False,
    )
    console.print(table)
    text = console.file.getvalue()
    # Rich pads every line to the full width; trailing blanks only get in the way in pipes.
    return text if color else "".join(line.rstrip() + "\n" for line in text.splitlines())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO text, non-finite floats as null, the rest unchanged."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _csv_cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _compact(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_compact(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={_compact(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _table_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "peak_memory_bytes":
        return f"{value / 2**20:,.1f} MiB" if value < 2**30 else f"{value / 2**30:,.2f} GiB"
    if column.endswith("_bytes") and _is_number(value):
        return f"{value / 2**30:,.1f} GiB"
    if column in ("trainable_params", "total_params") and isinstance(value, int):
        return f"{value:,}"
    if column == "trainable_pct":
        return f"{value:.3g}%"
    if column == "learning_rate":
        return f"{value:.3g}"
    if column in ("train_seconds", "eval_seconds", "examples_per_second"):
        return f"{value:.1f}"
    if column == "metric_std":
        return f"±{value:.3f}"
    if column == "tied_with":
        return ("≈ " + ",".join(map(str, value))) if value else ""
    if column == "is_pareto":
        return "*" if value else ""
    if column == "objectives":
        return ", ".join(f"{'max' if d.startswith('max') else 'min'} {n}" for n, d in value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if column == "extra":
        return json.dumps(_plain(value), separators=(",", ":"))
    return _compact(value)


def render_trial(row: dict, *, title: str) -> str:
    """One trial for people: a field/value table, then its traceback (if it raised) in full.

    ``row`` is one detailed :func:`trial_rows` row.
    """
    extra = dict(row.get("extra") or {})
    trace = extra.pop("traceback", None)
    fields = [{"field": _LABELS.get(c, c), "value": _table_cell(c, extra or None)
               if c == "extra" else _table_cell(c, v)}
              for c, v in row.items() if v is not None and v != {}]
    text = render(Rows(fields, ["field", "value"], empty="no fields"), "table", title=title)
    if trace:
        text += "\ntraceback:\n" + trace.rstrip() + "\n"
    return text
