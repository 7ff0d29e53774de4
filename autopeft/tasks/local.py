"""Readers for local copies of GLUE (TSV) and SuperGLUE (JSONL) in their original layouts.

A data folder holds ``glue/<task>/train.tsv`` + ``dev.tsv`` (MNLI: ``dev_matched.tsv``) and
``superglue/<task>/train.jsonl`` + ``val.jsonl``. GLUE TSVs contain quote characters, so rows
are split on tabs with no csv quoting and only the line ending is stripped. Columns are found
by header name, except CoLA whose files have no header. Labels are mapped to the hub's
integer indices through :attr:`TaskSpec.label_names`.

Readers return ``(texts, label)`` pairs; :mod:`autopeft.tasks.loading` wraps them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.tasks.registry import TaskSpec

logger = logging.getLogger(__name__)

Row = tuple[tuple[str, ...], int | float]

# Rows that do not parse are skipped; more than this fraction means a wrong or broken file.
MAX_MALFORMED_FRACTION = 0.01


@dataclass(frozen=True)
class _TsvLayout:
    """Where a GLUE task's texts and label sit in its TSV files.

    Column names when the file has a header, integer positions (and the expected column
    count) when it has none.
    """

    texts: tuple[str | int, ...]
    label: str | int
    eval_file: str = "dev.tsv"
    headerless_columns: int | None = None


_GLUE_LAYOUTS: dict[str, _TsvLayout] = {
    # CoLA: source, label, original label ("*" when unacceptable), sentence; no header.
    "cola": _TsvLayout(texts=(3,), label=1, headerless_columns=4),
    "sst2": _TsvLayout(texts=("sentence",), label="label"),
    # MRPC keeps the msr_paraphrase layout: Quality, #1 ID, #2 ID, #1 String, #2 String.
    "mrpc": _TsvLayout(texts=("#1 String", "#2 String"), label="Quality"),
    "qqp": _TsvLayout(texts=("question1", "question2"), label="is_duplicate"),
    "stsb": _TsvLayout(texts=("sentence1", "sentence2"), label="score"),
    "mnli": _TsvLayout(texts=("sentence1", "sentence2"), label="gold_label",
                       eval_file="dev_matched.tsv"),
    "qnli": _TsvLayout(texts=("question", "sentence"), label="label"),
    "rte": _TsvLayout(texts=("sentence1", "sentence2"), label="label"),
    "wnli": _TsvLayout(texts=("sentence1", "sentence2"), label="label"),
}


def task_dir(spec: TaskSpec, root: Path) -> Path:
    """The folder of one task under a data folder (``root/glue/rte``)."""
    return root / spec.benchmark / spec.short_name


def expected_files(spec: TaskSpec) -> str:
    """Human-readable file names a local copy needs, for error messages."""
    if spec.benchmark == "glue":
        return f"{spec.name}/train.tsv and {_GLUE_LAYOUTS[spec.short_name].eval_file}"
    return f"{spec.name}/train.jsonl and val.jsonl"


def local_files(spec: TaskSpec, root: Path) -> tuple[Path, Path]:
    """Find a task's train and eval files under ``root``.

    SuperGLUE copies may hold a FewGLUE-style ``train32.jsonl`` instead of ``train.jsonl``:
    exactly one ``train*.jsonl`` is accepted when ``train.jsonl`` is absent.

    Args:
        spec: The task.
        root: The data folder (the one holding ``glue/`` and ``superglue/``).

    Returns:
        ``(train_path, eval_path)``.

    Raises:
        AutopeftError: Naming the first missing file, or the candidates if ambiguous.
    """
    folder = task_dir(spec, root)
    if not folder.is_dir():
        raise AutopeftError(
            f"cannot load {spec.name}: no folder {folder} (expected {expected_files(spec)} "
            f"under {root})"
        )
    if spec.benchmark == "glue":
        train, evaluation = folder / "train.tsv", folder / _GLUE_LAYOUTS[spec.short_name].eval_file
    else:
        train, evaluation = folder / "train.jsonl", folder / "val.jsonl"
        if not train.is_file():
            candidates = sorted(folder.glob("train*.jsonl"))
            if len(candidates) > 1:
                names = ", ".join(p.name for p in candidates)
                raise AutopeftError(
                    f"cannot load {spec.name}: no train.jsonl in {folder} and several "
                    f"train*.jsonl ({names}); keep one or name one train.jsonl"
                )
            if candidates:
                train = candidates[0]
    for path in (train, evaluation):
        if not path.is_file():
            raise AutopeftError(f"cannot load {spec.name}: missing file {path}")
    return train, evaluation


def read_split(spec: TaskSpec, path: Path) -> list[Row]:
    """Read one split file of a task into ``(texts, label)`` rows.

    Args:
        spec: The task.
        path: A ``.tsv`` (GLUE) or ``.jsonl`` (SuperGLUE) file.

    Returns:
        The rows, in file order, without the malformed ones.

    Raises:
        AutopeftError: If more than 1% of the rows are malformed (naming the first).
    """
    parse = _tsv_rows if spec.benchmark == "glue" else _jsonl_rows
    rows: list[Row] = []
    malformed = 0
    first_bad: tuple[int, str] | None = None
    for line_no, row in parse(spec, path):
        if isinstance(row, str):
            malformed += 1
            first_bad = first_bad or (line_no, row)
        else:
            rows.append(row)
    if not rows and not malformed:
        raise AutopeftError(f"cannot load {spec.name}: {path} has no rows (a header only?)")
    if malformed:
        total = malformed + len(rows)
        line_no, reason = first_bad  # type: ignore[misc]
        if malformed > MAX_MALFORMED_FRACTION * total:
            raise AutopeftError(
                f"cannot load {spec.name}: {malformed} of {total} rows in {path} are malformed "
                f"(first at line {line_no}: {reason}); is this the original "
                f"{spec.benchmark.upper()} layout?"
            )
        logger.warning("%s: skipped %d malformed rows of %d (first at line %d: %s)",
                       path, malformed, total, line_no, reason)
    return rows


def coerce_label(spec: TaskSpec, raw: Any) -> int | float:
    """Turn a label as stored in a file (name, bool, int or numeric string) into hub form.

    Raises:
        ValueError: If the value is not a label of this task.
    """
    if spec.label_names is None:
        if isinstance(raw, bool):
            raise ValueError(f"bad score {raw!r}")
        return float(raw)
    if isinstance(raw, bool):
        index = int(raw)
    elif isinstance(raw, int):
        index = raw
    elif isinstance(raw, str):
        key = raw.strip().lower()
        names = [name.lower() for name in spec.label_names]
        if key in names:
            index = names.index(key)
        elif key.isdigit():
            index = int(key)
        else:
            raise ValueError(f"unknown label {raw!r}")
    else:
        raise ValueError(f"unknown label {raw!r}")
    if not 0 <= index < len(spec.label_names):
        raise ValueError(f"label {raw!r} out of range")
    return index


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    # utf-8-sig: MRPC's msr_paraphrase files start with a byte-order mark.
    try:
        with path.open(encoding="utf-8-sig", newline="\n") as handle:
            for line_no, line in enumerate(handle, start=1):
                line = line[:-1] if line.endswith("\n") else line
                line = line[:-1] if line.endswith("\r") else line
                if line.strip():
                    yield line_no, line
    except UnicodeDecodeError:
        raise _not_utf8(path) from None


def _not_utf8(path: Path) -> AutopeftError:
    raw = path.read_bytes()  # only on error: the decoder's offset is within one read chunk
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return AutopeftError(f"{path} is not UTF-8 text (byte {raw[exc.start]:#04x} on line "
                             f"{line}); save it as UTF-8")
    return AutopeftError(f"{path} is not UTF-8 text; save it as UTF-8")


def _tsv_rows(spec: TaskSpec, path: Path) -> Iterator[tuple[int, Row | str]]:
    layout = _GLUE_LAYOUTS[spec.short_name]
    lines = _lines(path)
    if layout.headerless_columns is not None:
        width = layout.headerless_columns
        text_idx = [int(col) for col in layout.texts]
        label_idx = int(layout.label)
    else:
        header = next(lines, (0, ""))[1].split("\t")
        missing = [col for col in (*layout.texts, layout.label) if col not in header]
        if missing:
            raise AutopeftError(
                f"cannot load {spec.name}: {path} has no column {missing[0]!r} in its header "
                f"(found: {', '.join(header)})"
            )
        width = len(header)
        text_idx = [header.index(col) for col in layout.texts]
        label_idx = header.index(layout.label)
    for line_no, line in lines:
        fields = line.split("\t")
        if len(fields) != width:
            yield line_no, f"{len(fields)} columns instead of {width}"
            continue
        try:
            label = coerce_label(spec, fields[label_idx])
        except ValueError as err:
            yield line_no, str(err)
            continue
        yield line_no, (tuple(fields[i] for i in text_idx), label)


def _jsonl_rows(spec: TaskSpec, path: Path) -> Iterator[tuple[int, Row | str]]:
    for line_no, line in _lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            yield line_no, f"invalid JSON ({err.msg})"
            continue
        if not isinstance(record, dict):
            yield line_no, "not a JSON object"
            continue
        # The original WSC files nest span1_text/span2_text under "target"; the hub flattens.
        nested = record.get("target") if isinstance(record.get("target"), dict) else {}
        texts = [record.get(field, nested.get(field)) for field in spec.text_fields]
        absent = [
            f for f, text in zip(spec.text_fields, texts, strict=True) if not isinstance(text, str)
        ]
        if absent:
            yield line_no, f"no text field {absent[0]!r}"
            continue
        if "label" not in record:
            yield line_no, "no label"
            continue
        try:
            label = coerce_label(spec, record["label"])
        except ValueError as err:
            yield line_no, str(err)
            continue
        yield line_no, (tuple(texts), label)
