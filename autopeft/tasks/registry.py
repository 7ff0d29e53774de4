"""The GLUE and SuperGLUE tasks autopeft can search on, with their official metrics.

Every task is one frozen :class:`TaskSpec` registered once under its canonical name
(``"glue/rte"``, ``"superglue/boolq"``). Label indices follow the hub datasets
(``nyu-mll/glue``, ``aps/super_glue``) so local files and hub data mean the same thing, and
``label_names`` double as the verbalisers T5 is trained to generate.

Primary metrics (what the search optimises): the task's only metric, or the first of two.
MRPC/QQP use F1 (accuracy is skewed by the class balance), STS-B Pearson, CoLA Matthews
correlation, and CB macro-F1 (3 unbalanced classes, 56 dev examples: accuracy is dominated
by the majority class, so macro-F1 is the more informative of the two official metrics).

Left out of SuperGLUE: MultiRC (multi-answer questions scored per question with EM/F1a) and
ReCoRD (span extraction over entity candidates) do not reduce to sentence classification;
AX-b and AX-g are diagnostic test sets without a training split.
"""

from __future__ import annotations

from dataclasses import dataclass

from autopeft.errors import AutopeftError, excerpt

BENCHMARKS = ("glue", "superglue")
KNOWN_METRICS = ("accuracy", "f1", "f1_macro", "matthews_correlation", "pearson", "spearman")
_REGRESSION_METRICS = frozenset({"pearson", "spearman"})


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task: where its data lives, what a row looks like, how it is scored.

    Attributes:
        name: Canonical name, ``"<benchmark>/<short name>"`` (``"glue/rte"``).
        benchmark: ``"glue"`` or ``"superglue"``.
        subset: Hub config name (``"rte"``; ``"wsc.fixed"`` for superglue/wsc).
        hub_path: Hub dataset id (``"nyu-mll/glue"`` or ``"aps/super_glue"``).
        text_fields: Hub column names of the input texts, in the order models see them.
        label_names: Name of integer label ``i`` at index ``i`` (hub order), also the T5
            verbalisers; None for regression (STS-B).
        metrics: Official metrics, names from :data:`KNOWN_METRICS`.
        primary_metric: The metric the search optimises; one of ``metrics``.
        eval_split: Hub split used for evaluation (GLUE test labels are hidden).
    """

    name: str
    benchmark: str
    subset: str
    hub_path: str
    text_fields: tuple[str, ...]
    label_names: tuple[str, ...] | None
    metrics: tuple[str, ...]
    primary_metric: str
    eval_split: str = "validation"

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"{self.name}: benchmark must be one of {BENCHMARKS}")
        if not self.name.startswith(self.benchmark + "/") or self.name != self.name.lower():
            raise ValueError(f"{self.name}: name must be lowercase '{self.benchmark}/<task>'")
        if not self.text_fields:
            raise ValueError(f"{self.name}: text_fields is empty")
        unknown = set(self.metrics) - set(KNOWN_METRICS)
        if unknown:
            raise ValueError(f"{self.name}: unknown metrics {sorted(unknown)}")
        if self.primary_metric not in self.metrics:
            raise ValueError(f"{self.name}: primary_metric {self.primary_metric!r} not in metrics")
        regression_metrics = set(self.metrics) & _REGRESSION_METRICS
        if (self.label_names is None) != bool(regression_metrics):
            raise ValueError(f"{self.name}: label_names must be None exactly for regression")
        if self.label_names is not None and len(self.label_names) < 2:
            raise ValueError(f"{self.name}: a classification task needs at least 2 labels")

    @property
    def short_name(self) -> str:
        """The task name without its benchmark (``"rte"``, ``"wsc"``); also the T5 prefix."""
        return self.name.split("/", 1)[1]

    @property
    def is_regression(self) -> bool:
        """True for tasks with a real-valued label (STS-B)."""
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        """Number of classes, or 1 for regression (the size of a classification head)."""
        return 1 if self.label_names is None else len(self.label_names)


_TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add a task to the registry.

    Args:
        spec: The task; its name must not be registered yet.

    Returns:
        The same spec, for chaining.

    Raises:
        ValueError: If a task of that name is already registered.
    """
    if spec.name in _TASKS:
        raise ValueError(f"task {spec.name!r} is already registered")
    _TASKS[spec.name] = spec
    return spec


def _glue(subset: str, text_fields: tuple[str, ...], label_names: tuple[str, ...] | None,
          metrics: tuple[str, ...], *, eval_split: str = "validation") -> None:
    register_task(TaskSpec(
        name=f"glue/{subset}", benchmark="glue", subset=subset, hub_path="nyu-mll/glue",
        text_fields=text_fields, label_names=label_names, metrics=metrics,
        primary_metric=metrics[0], eval_split=eval_split,
    ))


def _superglue(short: str, text_fields: tuple[str, ...], label_names: tuple[str, ...],
               metrics: tuple[str, ...] = ("accuracy",), *, subset: str | None = None) -> None:
    register_task(TaskSpec(
        name=f"superglue/{short}", benchmark="superglue", subset=subset or short,
        hub_path="aps/super_glue", text_fields=text_fields, label_names=label_names,
        metrics=metrics, primary_metric=metrics[0],
    ))


_NLI2 = ("entailment", "not_entailment")
_BOOL = ("False", "True")

_glue("cola", ("sentence",), ("unacceptable", "acceptable"), ("matthews_correlation",))
_glue("sst2", ("sentence",), ("negative", "positive"), ("accuracy",))
_glue("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), ("f1", "accuracy"))
_glue("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), ("f1", "accuracy"))
_glue("stsb", ("sentence1", "sentence2"), None, ("pearson", "spearman"))
_glue("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
      ("accuracy",), eval_split="validation_matched")
_glue("qnli", ("question", "sentence"), _NLI2, ("accuracy",))
_glue("rte", ("sentence1", "sentence2"), _NLI2, ("accuracy",))
_glue("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"), ("accuracy",))

_superglue("boolq", ("question", "passage"), _BOOL)
_superglue("cb", ("premise", "hypothesis"), ("entailment", "contradiction", "neutral"),
           ("f1_macro", "accuracy"))
_superglue("copa", ("premise", "question", "choice1", "choice2"), ("choice1", "choice2"))
_superglue("rte", ("premise", "hypothesis"), _NLI2)
_superglue("wic", ("word", "sentence1", "sentence2"), _BOOL)
_superglue("wsc", ("text", "span1_text", "span2_text"), _BOOL, subset="wsc.fixed")
# Not registered: multirc, record, axb, axg (see the module docstring).

_ALIASES = {"super_glue": "superglue", "wsc.fixed": "wsc"}


def list_tasks() -> list[TaskSpec]:
    """All registered tasks, GLUE first, in registration order."""
    return list(_TASKS.values())


def get_task(name: str) -> TaskSpec:
    """Look a task up by canonical name, alias or unambiguous short name.

    Accepts ``"glue/rte"``, ``"super_glue/boolq"``, ``"superglue/wsc.fixed"`` and a bare
    short name such as ``"sst2"`` when only one benchmark has it. Case-insensitive.

    Args:
        name: The task name.

    Returns:
        The registered :class:`TaskSpec`.

    Raises:
        AutopeftError: If the name is unknown or a bare name is in both benchmarks.
    """
    key = name.strip().lower()
    if "/" in key:
        bench, short = key.split("/", 1)
        key = f"{_ALIASES.get(bench, bench)}/{_ALIASES.get(short, short)}"
        if key in _TASKS:
            return _TASKS[key]
    else:
        short = _ALIASES.get(key, key)
        matches = [spec for spec in _TASKS.values() if spec.short_name == short]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            options = " or ".join(spec.name for spec in matches)
            raise AutopeftError(f"task {excerpt(name)} is ambiguous: say {options}")
    known = ", ".join(_TASKS)
    raise AutopeftError(f"unknown task {excerpt(name)}; known tasks: {known}")
