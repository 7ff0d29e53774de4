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
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
}


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
        trials: Trials to show, in the order to show them.
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
        row[primary] = t.primary_metric
        row.update({col: t.metrics.get(k) for k, col in metric_cols.items()})
        row.update({c: getattr(t, c) for c in tail if c != "trainable_pct"})
        row["trainable_pct"] = None if fraction is None else 100.0 * fraction
        rows.append({c: row[c] for c in columns})
    return Rows(rows, columns, empty="no trials")


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
) -> str:
    """Render rows as ``"table"`` (rich, for people), ``"json"`` or ``"csv"``.

    Args:
        rows: Row dicts, ideally :class:`Rows` (which carries the columns of empty results).
        fmt: ``"table"``, ``"json"`` or ``"csv"``.
        title: Table title (tables only).
        width: Table width; defaults to the terminal's (160 when not a terminal). A table
            that cannot fit without cutting cells is rendered at its natural width.
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
    table = Table(title=title, box=box.SIMPLE_HEAD, highlight=False)
    for c in columns:
        numeric = any(_is_number(r.get(c)) for r in rows)
        table.add_column(_LABELS.get(c, c), justify="right" if numeric else "left")
    for r in rows:
        style = "bold" if color and r.get("is_pareto") else None
        table.add_row(*(Text(_table_cell(c, r.get(c))) for c in columns), style=style)
    width = width or shutil.get_terminal_size((160, 24)).columns
    text = _print(table, width, color)
    if "…" in text and not any("…" in str(v) for r in rows for v in r.values()):
        # Rich squeezed cells to "…" to fit the width; a report must not lose data, so use
        # the table's natural width instead (one line per row; page with `less -S`).
        natural = Console(file=io.StringIO(), width=100_000).measure(table).maximum
        text = _print(table, max(width, natural), color)
    return text


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
        return f"{value / 2**20:,.1f} MiB"
    if column in ("trainable_params", "total_params") and isinstance(value, int):
        return f"{value:,}"
    if column == "trainable_pct":
        return f"{value:.3g}%"
    if column == "learning_rate":
        return f"{value:.3g}"
    if column in ("train_seconds", "eval_seconds", "examples_per_second"):
        return f"{value:.1f}"
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
