"""Loading a task's train and eval splits, and T5-style text-to-text formatting.

Data comes from a local copy when there is one (``--data-dir`` / ``AUTOPEFT_DATA_DIR`` /
``../shared/data``), else from the hub. The eval split is always the dev / validation split,
because GLUE and SuperGLUE test labels are hidden.

Seq2seq models (T5) are trained text to text as in the T5 paper: the input is the task's
short name followed by ``field: text`` pairs (``"rte sentence1: ... sentence2: ..."``), the
target is the label name (``"not_entailment"``), and predictions are scored by parsing the
generated text back with :func:`parse_label_text`. Fields come in ``text_fields`` order
(T5 sorted them alphabetically; the order carries no meaning to the model).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

from autopeft.errors import AutopeftError
from autopeft.tasks import hub, local
from autopeft.tasks.registry import TaskSpec, get_task


@dataclass(frozen=True)
class Example:
    """One labelled example.

    Attributes:
        texts: The input texts, in ``TaskSpec.text_fields`` order.
        label: The integer class (hub order), or the score for regression.
    """

    texts: tuple[str, ...]
    label: int | float


@dataclass(frozen=True)
class TaskData:
    """A task's loaded splits.

    Attributes:
        spec: The task.
        train: Training examples (possibly subsampled).
        eval: Dev / validation examples (possibly subsampled).
        source: Where they came from: ``"local:<task folder>"`` (plus the train file when it
            is not the standard one) or ``"hub:<hub path>/<subset>"``.
    """

    spec: TaskSpec
    train: list[Example]
    eval: list[Example]
    source: str


def load_task(
    name_or_spec: str | TaskSpec,
    *,
    data_dir: str | Path | None = None,
    train_samples: int | None = None,
    eval_samples: int | None = None,
    seed: int = 0,
) -> TaskData:
    """Load a task's train and eval splits.

    With ``data_dir`` given, the task's files must be under it (no hub fallback). Without it,
    :func:`autopeft.paths.default_data_dir` is tried first and the hub second.

    Args:
        name_or_spec: A task name accepted by :func:`get_task`, or a :class:`TaskSpec`.
        data_dir: Folder holding ``glue/<task>/`` and ``superglue/<task>/``.
        train_samples: Keep this many random training examples (all if the split is smaller).
        eval_samples: Same for the eval split.
        seed: Seed of the subsampling; the same seed always picks the same examples.

    Returns:
        The loaded :class:`TaskData`.

    Raises:
        AutopeftError: On a missing file, malformed data, a bad sample count, or when there
            is no local copy and the hub cannot be reached.
    """
    spec = name_or_spec if isinstance(name_or_spec, TaskSpec) else get_task(name_or_spec)
    for flag, count in (("--train-samples", train_samples), ("--eval-samples", eval_samples)):
        if count is not None and count <= 0:
            raise AutopeftError(f"{flag} must be a positive number of examples, got {count}")

    if data_dir is not None:
        train_rows, eval_rows, source = _load_local(spec, Path(data_dir).expanduser())
    else:
        from autopeft.paths import default_data_dir

        default = default_data_dir()
        if default is not None and local.task_dir(spec, default).is_dir():
            train_rows, eval_rows, source = _load_local(spec, default)
        else:
            train_rows, eval_rows, source = _load_hub(spec, default)

    return TaskData(
        spec=spec,
        train=_subsample(train_rows, train_samples, f"{seed}/train"),
        eval=_subsample(eval_rows, eval_samples, f"{seed}/eval"),
        source=source,
    )


def _load_local(spec: TaskSpec, root: Path) -> tuple[list, list, str]:
    train_path, eval_path = local.local_files(spec, root)
    source = f"local:{local.task_dir(spec, root)}"
    if train_path.name not in ("train.tsv", "train.jsonl"):
        source += f" (train from {train_path.name})"
    return local.read_split(spec, train_path), local.read_split(spec, eval_path), source


def _load_hub(spec: TaskSpec, default: Path | None) -> tuple[list, list, str]:
    try:
        dataset = hub.fetch(spec)
    except hub.HubUnreachable as err:
        where = f"under {default}" if default is not None else "(no --data-dir)"
        raise AutopeftError(
            f"cannot load {spec.name}: no local copy {where} and the hub is unreachable "
            f"({err}); pass --data-dir DIR (or set AUTOPEFT_DATA_DIR) pointing at a folder "
            f"with {local.expected_files(spec)}"
        ) from err
    train = hub.split_rows(spec, dataset, "train")
    evaluation = hub.split_rows(spec, dataset, spec.eval_split)
    return train, evaluation, f"hub:{spec.hub_path}/{spec.subset}"


def _subsample(rows: list, count: int | None, seed: str) -> list[Example]:
    """Pick ``count`` rows without replacement, keeping file order; all when too few."""
    if count is not None and count < len(rows):
        # A string seed is hashed deterministically (not affected by PYTHONHASHSEED), and
        # gives train and eval independent streams.
        picked = sorted(random.Random(seed).sample(range(len(rows)), count))
        rows = [rows[i] for i in picked]
    return [Example(texts=texts, label=label) for texts, label in rows]


def format_text2text(spec: TaskSpec, ex: Example) -> str:
    """The T5 input text of an example: ``"<task> <field>: <text> <field>: <text> ..."``.

    Example:
        ``"sst2 sentence: it 's a charming journey ."``
    """
    parts = [spec.short_name]
    for field, text in zip(spec.text_fields, ex.texts, strict=True):
        parts.append(f"{field}: {text.strip()}")
    return " ".join(parts)


def label_text(spec: TaskSpec, label: int | float) -> str:
    """The T5 target text of a label: its name, or for STS-B the score to one decimal.

    STS-B scores are rounded to the nearest 0.2 first, as in T5, so the model learns 26
    distinct targets (``"0.0"`` ... ``"5.0"``).

    Raises:
        ValueError: If ``label`` is not a valid class index of a classification task.
    """
    if spec.label_names is None:
        return f"{round(float(label) * 5) / 5 + 0.0:.1f}"  # + 0.0 turns -0.0 into 0.0
    if isinstance(label, bool) or not isinstance(label, int) or not (
        0 <= label < len(spec.label_names)
    ):
        raise ValueError(f"{spec.name}: label {label!r} is not in 0..{spec.num_labels - 1}")
    return spec.label_names[label]


def _normalise(text: str) -> str:
    return re.sub(r"[\s_-]+", "_", text.strip().lower()).strip("_")


def parse_label_text(spec: TaskSpec, text: str) -> int | float | None:
    """Inverse of :func:`label_text` for generated text; None when it is not a label.

    Case, surrounding whitespace and the spelling of separators (``"not entailment"``,
    ``"Not_Entailment "``) are ignored.
    """
    if spec.label_names is None:
        try:
            value = float(text.strip())
        except ValueError:
            return None
        return value if math.isfinite(value) else None
    key = _normalise(text)
    for index, name in enumerate(spec.label_names):
        if _normalise(name) == key:
            return index
    return None
