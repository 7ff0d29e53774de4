"""Loading tasks from the Hugging Face hub (``nyu-mll/glue``, ``aps/super_glue``).

``datasets`` is imported only when a task is actually fetched. Column dtypes are not relied
on (``datasets`` 5 loads strings as ``large_string``): values are converted with ``str`` /
``int`` / ``float``. Anything that prevents fetching is reported as :class:`HubUnreachable`,
which :func:`autopeft.tasks.loading.load_task` turns into a one-line user error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.hub import hub_unreachable_reason
from autopeft.tasks.registry import TaskSpec

Row = tuple[tuple[str, ...], int | float]


class HubUnreachable(Exception):
    """The hub could not be reached or did not serve the dataset (reason in the message)."""


def fetch(spec: TaskSpec) -> Any:
    """Download (or read from the ``datasets`` cache) a task's dataset.

    Args:
        spec: The task.

    Returns:
        What ``datasets.load_dataset(spec.hub_path, spec.subset)`` returns: a mapping of
        split names to datasets.

    Raises:
        HubUnreachable: In offline mode, without DNS, or when ``load_dataset`` fails.
    """
    reason = hub_unreachable_reason()
    if reason:
        raise HubUnreachable(reason)
    import datasets

    try:
        return datasets.load_dataset(spec.hub_path, spec.subset)
    except Exception as err:  # any failure here means the data could not be fetched
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise HubUnreachable(f"{type(err).__name__}: {reason}".rstrip(": ")) from err


def split_rows(spec: TaskSpec, dataset: Mapping[str, Any], split: str) -> list[Row]:
    """Map one hub split to ``(texts, label)`` rows.

    Args:
        spec: The task.
        dataset: Split name -> a ``datasets.Dataset`` or a dict of column lists.
        split: The split to read (``"train"``, ``spec.eval_split``).

    Returns:
        The rows in dataset order; rows with the hidden label -1 are dropped.

    Raises:
        AutopeftError: If the split or a column is missing or a label is out of range.
    """
    where = f"{spec.hub_path}/{spec.subset}"
    if split not in dataset:
        raise AutopeftError(
            f"cannot load {spec.name}: hub dataset {where} has no split {split!r} "
            f"(has: {', '.join(map(str, dataset))})"
        )
    part = dataset[split]
    columns: list[list[Any]] = []
    for column in (*spec.text_fields, "label"):
        try:
            columns.append(list(part[column]))
        except (KeyError, ValueError) as err:
            raise AutopeftError(
                f"cannot load {spec.name}: hub split {where}/{split} has no column {column!r}"
            ) from err
    *texts, labels = columns
    rows: list[Row] = []
    for i, raw in enumerate(labels):
        if spec.is_regression:
            label: int | float = float(raw)
        else:
            label = int(raw)
            if label == -1:  # hidden test label; not expected in train/validation
                continue
            if not 0 <= label < spec.num_labels:
                raise AutopeftError(
                    f"cannot load {spec.name}: hub split {where}/{split} row {i} has label "
                    f"{raw!r}, expected 0..{spec.num_labels - 1}"
                )
        rows.append((tuple(str(col[i]) for col in texts), label))
    return rows
