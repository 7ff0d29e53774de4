"""GLUE / SuperGLUE tasks: the registry, data loading and official metrics.

Importing this package is cheap: ``datasets``, ``sklearn`` and ``scipy`` are imported only
by the functions that need them.
"""

from __future__ import annotations

from autopeft.tasks.loading import (
    Example,
    TaskData,
    format_text2text,
    label_text,
    load_task,
    parse_label_text,
)
from autopeft.tasks.metrics import compute_metrics
from autopeft.tasks.registry import TaskSpec, get_task, list_tasks

__all__ = [
    "Example",
    "TaskData",
    "TaskSpec",
    "compute_metrics",
    "format_text2text",
    "get_task",
    "label_text",
    "list_tasks",
    "load_task",
    "parse_label_text",
]
