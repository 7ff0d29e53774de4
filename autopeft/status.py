"""Statuses of trials and studies, and what a stored trial row holds: one leaf module.

Every module that sets or tests a status uses these enums; being ``str`` subclasses they
compare equal to, and store as, their plain values (``TrialStatus.COMPLETED == "completed"``),
so rows written before the enums existed read back unchanged.
"""

from __future__ import annotations

import enum
from typing import Any


class _StrEnum(str, enum.Enum):
    # enum.StrEnum arrived in Python 3.11; we support 3.10.
    def __str__(self) -> str:
        return self.value


class TrialStatus(_StrEnum):
    """How a trial ended (``RUNNING`` only for a report made while it still trains)."""

    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    NOT_APPLICABLE = "not_applicable"
    INFEASIBLE = "infeasible"
    OOM = "oom"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"
    RUNNING = "running"

    @property
    def used_budget(self) -> bool:
        """Counts toward ``--trials``: every stored end but ``interrupted`` (run again)."""
        return self not in (TrialStatus.INTERRUPTED, TrialStatus.RUNNING)


class StudyStatus(_StrEnum):
    """Where a study stands."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


def controller_identity() -> dict[str, Any]:
    """Who runs a study: stored in its settings, read by :func:`controller_alive`."""
    import os
    import socket

    return {"controller_host": socket.gethostname(), "controller_pid": os.getpid()}


def controller_alive(settings: dict[str, Any] | None) -> bool | None:
    """Whether the controller recorded in a study's settings still runs: True or False when
    it ran on this host (its process exists or not), None when that cannot be told (another
    host, or none recorded)."""
    import socket

    settings = settings or {}
    pid, host = settings.get("controller_pid"), settings.get("controller_host")
    if not pid or host != socket.gethostname():
        return None
    import psutil

    return psutil.pid_exists(int(pid))


# What a stored trial row may hold: every status but the transient RUNNING.
STORED_TRIAL_STATUSES: tuple[str, ...] = tuple(
    s.value for s in TrialStatus if s is not TrialStatus.RUNNING
)

# The Optuna user attribute that keeps a finished trial's row (JSON of trial_row), so a
# resume can restore a row the driver died before writing.
RESULT_ATTR = "autopeft_result"
ROW_FIELDS = (
    "method", "params", "learning_rate", "status", "reason", "primary_metric", "metrics",
    "trainable_params", "total_params", "peak_memory_bytes", "memory_kind", "train_seconds",
    "eval_seconds", "examples_per_second", "steps", "unparseable_predictions", "eval_examples",
)
EXTRA_FIELDS = ("device", "epochs_completed", "node_id", "gpu_ids", "node_ip", "stopped_at_step",
                "adapter_path", "predicted_peak_bytes", "grad_accum", "seed", "confirms",
                "traceback", "peak_memory_meter", "rss_peak_bytes", "gpu_fraction")
# A confirmation repeat's extra: the trial it repeats with another seed (autopeft confirm).
CONFIRMS_KEY = "confirms"


def confirms(extra: dict[str, Any] | None) -> int | None:
    """The trial a stored trial repeats with another seed (None: an ordinary trial)."""
    value = (extra or {}).get(CONFIRMS_KEY)
    return None if value is None or isinstance(value, bool) else int(value)


def trial_row(result: dict[str, Any]) -> dict[str, Any]:
    """The stored fields of a reported result (``Store.add_trial`` keyword arguments)."""
    row = {k: result.get(k) for k in ROW_FIELDS}
    row["params"] = row["params"] or {}
    if row["status"] is not None:
        row["status"] = TrialStatus(row["status"]).value
    row["extra"] = {k: result.get(k) for k in EXTRA_FIELDS if result.get(k) is not None}
    return row
