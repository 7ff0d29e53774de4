"""Loading tasks from the Hugging Face hub (``nyu-mll/glue``, ``aps/super_glue``).

``datasets`` is imported only when a task is actually fetched. Column dtypes are not relied
on (``datasets`` 5 loads strings as ``large_string``): values are converted with ``str`` /
``int`` / ``float``. Anything that prevents fetching is reported as :class:`HubUnreachable`,
which :func:`autopeft.tasks.loading.load_task` turns into a one-line user error.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from autopeft.errors import AutopeftError
from autopeft.tasks.registry import TaskSpec

Row = tuple[tuple[str, ...], int | float]

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
_TRUE = {"1", "true", "yes", "on"}


class HubUnreachable(Exception):
    """The hub could not be reached or did not serve the dataset (reason in the message)."""


def _hub_resolvable() -> bool:
    """Whether the hub's host name resolves; False only on a definite DNS failure.

    Saves ``datasets``' ~25 s of retries on a machine without network. Skipped behind a
    proxy, where the proxy resolves names.
    """
    if any(os.environ.get(var) for var in _PROXY_VARS):
        return True
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname
    if not host:
        return True
    try:
        socket.getaddrinfo(host, 443)
    except socket.gaierror:
        return False
    except OSError:
        return True
    return True


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
    for var in _OFFLINE_VARS:
        if os.environ.get(var, "").strip().lower() in _TRUE:
            raise HubUnreachable(f"offline mode ({var}={os.environ[var]})")
    if not _hub_resolvable():
        raise HubUnreachable("the hub's host name does not resolve")
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
