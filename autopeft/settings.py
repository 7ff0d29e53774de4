"""One search's settings, from the command line to each trial: :class:`SearchSettings`.

The single source of what ``autopeft search`` takes. Its fields (and those of its
:class:`~autopeft.budget.Budget`) generate the argparse flags: the flag is the field's name
with dashes, the help is the string literal written under the field (like litgpt's
``TrainArgs``), and the type, choices and checks come from the annotation and the field's
metadata (:mod:`autopeft.options`). Each check is written once, in ``check_value``, and runs
both when argparse reads a flag and when the object is built in code. ``to_trial_config``
turns the settings plus one sampled configuration into the trial's
:class:`~autopeft.runner.config.TrialConfig`.

Light on purpose (argparse, dataclasses): ``autopeft --help`` imports it.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from functools import cache
from typing import Any

from autopeft.budget import Budget
from autopeft.errors import AutopeftError, excerpt
from autopeft.options import check_fields, check_value, flag_name, option, result_fields
from autopeft.precision import PRECISIONS

# ASCII only: a study name becomes a folder name (artifacts) and part of URLs and logs, and
# \w alone would let "aé٣" in while "étude" (first character) was refused.
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,119}")
STUDY_NAME_RULE = ("1 to 120 ASCII letters, digits, '.', '_' or '-', starting with a letter or "
                   "digit")
# Far beyond any model's positions; what tokenizers (a Rust usize) take.
MAX_LENGTH = 1 << 20
# Optuna's samplers seed numpy, which takes 0 .. 2**32 - 1.
SEED_BOUNDS = (0, 2**32 - 1)
SAMPLERS = ("tpe", "nsga2", "random")
SCHEDULERS = ("fifo", "asha")
SAVE_ADAPTERS = ("none", "front", "all")
PROGRESS = ("auto", "live", "plain", "off")


@dataclass
class SearchSettings:
    """Everything ``autopeft search`` was asked to do (stored with the study)."""

    task: str = field(metadata=option(required=True))
    """e.g. glue/sst2, glue/rte, superglue/boolq"""
    model: str = field(metadata=option(required=True))
    """hub id or local folder (e.g. t5-large)"""
    space: str = "default"
    """search space: a YAML file or the name of a shipped space (default)"""
    study: str | None = None
    """study name (default: made up from task, model and time); an existing study with the
    same settings is continued"""
    resume: bool = False
    """continue --study after a crash or stop (it must exist)"""
    storage: str | None = field(default=None, metadata=option(metavar="URL"))
    """SQLAlchemy URL of the store (default: $AUTOPEFT_STORAGE or an embedded SQLite file in
    the per-user data folder)"""
    budget: Budget = field(default_factory=Budget)
    """per-trial and whole-search limits (flags: see Budget)"""
    concurrency: int = field(default=1, metadata=option(positive=True))
    """trials at once (1)"""
    sampler: str = field(default="tpe", metadata=option(choices=SAMPLERS))
    """Optuna sampler"""
    # Off by default: on the frozen MiniLM table it delayed TPE (median 22 trials to 95% of
    # the hypervolume against 14 without; scripts/bench_search.py).
    cover_methods: bool = False
    """start with one trial of each method of the space (the rest of each configuration
    sampled), then search as usual"""
    # fifo stays the default: replayed on the table's per-epoch curves, ASHA saved only 1.1x
    # of the epochs random search needs to reach 95% of the hypervolume, and cost TPE 1.25x
    # more (scripts/bench_search.py); the goal for a default was 2x.
    scheduler: str = field(default="fifo", metadata=option(choices=SCHEDULERS))
    """asha: stop weak trials early on the primary metric (evaluates on dev every epoch or
    --eval-every steps)"""
    eval_every: int | None = field(default=None, metadata=option(positive=True,
                                                                  metavar="STEPS"))
    """steps between dev evaluations with --scheduler asha (default: epoch)"""
    seed: int = field(default=0, metadata=option(bounds=SEED_BOUNDS, result=True))
    """seed of the sampler, data subsampling and every trial"""
    confirm_seeds: int | None = field(default=None, metadata=option(positive=True,
                                                                     metavar="K"))
    """when the search ends, run each front configuration again with K more seeds (--seed+1
    ... --seed+K); the front then ranks the means (also later: `autopeft confirm`)"""
    batch_size: int = field(default=16, metadata=option(positive=True, result=True))
    """training batch size (16)"""
    max_length: int = field(default=256, metadata=option(bounds=(1, MAX_LENGTH), result=True))
    """input tokens (256)"""
    precision: str = field(default="auto", metadata=option(choices=PRECISIONS, result=True))
    """training precision (auto: bf16 where the GPU supports it, fp32 on CPU; bf16/fp16 need
    a GPU). On GPU the frozen base is held in it, the trainable weights in fp32"""
    data_dir: str | None = None
    """local GLUE/SuperGLUE copy (default: $AUTOPEFT_DATA_DIR or ../shared/data)"""
    train_samples: int | None = field(default=None, metadata=option(positive=True,
                                                                    result=True))
    """subsample training examples"""
    eval_samples: int | None = field(default=None, metadata=option(positive=True,
                                                                   result=True))
    """subsample evaluation examples"""
    ray_address: str | None = None
    """join an existing Ray cluster (default: local Ray)"""
    cpus_per_trial: int | None = field(default=None, metadata=option(positive=True))
    """CPUs each trial gets (default: the machine's CPUs / --concurrency)"""
    trust_remote_code: bool = False
    """allow model repositories with custom code"""
    progress: str = field(default="auto", metadata=option(choices=PROGRESS))
    """live progress of running trials: auto (a live display on a terminal, plain lines
    otherwise), live, plain, or off (trials send no progress)"""
    progress_every: float = field(default=30.0, metadata=option(positive=True,
                                                                 metavar="SECONDS"))
    """seconds between two plain progress lines of one running trial (30)"""
    profile: str | None = field(default=None, metadata=option(metavar="NAME|FILE", result=True))
    """hardware to plan for: a profile name (a100-80gb, ...; `autopeft profile --list`), a
    YAML file, auto (detect, the default) or none"""
    save_adapters: str = field(default="front", metadata=option(choices=SAVE_ADAPTERS))
    """keep trained adapters of front trials (default), all trials, or none"""
    save_full: bool = False
    """also keep full fine-tuning trials (a whole model each)"""
    artifacts_dir: str | None = field(default=None, metadata=option(metavar="DIR"))
    """where adapters and Ray Tune's trial folders are kept (default: the per-user data
    folder; on a cluster, a folder every node shares)"""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.study is not None and not STUDY_NAME.fullmatch(self.study):
            raise AutopeftError(
                f"bad study name {excerpt(self.study)}: use {STUDY_NAME_RULE}"
            )
        if self.resume and not self.study:
            raise AutopeftError("--resume needs --study NAME (the study to continue)")

    # -- to and from the command line ----------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add one flag per field (Budget's fields in place of ``budget``)."""
        for owner, f in _flag_fields():
            parser.add_argument(flag_name(f.name), **_argparse_kwargs(owner, f))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SearchSettings:
        """The settings a parsed command line asked for."""
        values = vars(args)
        budget = Budget(**{f.name: values[f.name] for f in fields(Budget)})
        return cls(budget=budget, **{f.name: values[f.name] for f in fields(cls)
                                     if f.name != "budget"})

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> SearchSettings:
        """Parse ``autopeft search`` arguments; a bad one raises AutopeftError (one line)."""
        parser = _RaisingParser(prog="autopeft search", add_help=False)
        cls.add_arguments(parser)
        return cls.from_args(parser.parse_args(list(argv)))

    # -- to the trial ----------------------------------------------------------------------
    def to_trial_config(self, sampled: Any, *, model_path: str, threads: int | None,
                        save_dir: str | None = None, grad_accum: int = 1,
                        seed: int | None = None) -> Any:
        """The trial's :class:`TrialConfig`: these settings plus one sampled configuration.

        Args:
            sampled: A :class:`~autopeft.space.SampledConfig` (method, params, learning rate).
            model_path: The resolved model folder (trials run where the working folder
                differs from the driver's).
            threads: torch CPU threads of the trial (its CPU share).
            save_dir: Where a completed trial saves its adapter, or None.
            grad_accum: Micro-batches per batch, as the memory planner decided.
            seed: The trial's seed when it is not the study's (a confirmation repeat).
        """
        from autopeft.runner.config import TrialConfig

        budget = self.budget
        return TrialConfig(
            task=self.task, model=model_path, method=sampled.method, params=sampled.params,
            learning_rate=sampled.learning_rate, epochs=budget.epochs,
            max_steps=budget.max_steps, timeout=budget.trial_timeout,
            batch_size=self.batch_size, max_length=self.max_length,
            seed=self.seed if seed is None else seed,
            precision=self.precision, threads=threads, eval_every=self.eval_every,
            save_dir=save_dir, save_full=self.save_full, grad_accum=grad_accum,
            trust_remote_code=self.trust_remote_code,
        )

    def result_settings(self) -> dict[str, Any]:
        """The settings that change what a trial measures, by field name (budget included).

        Marked ``result=True`` on their fields. Left out on purpose, with why: trials and
        time budget (how many trials, not what each measures), concurrency, sampler,
        cover-methods (what is tried next, not a trial's result), scheduler and eval-every
        (ASHA stops a trial early as a ``pruned`` row; a completed trial ran in full either
        way), CPUs per trial, Ray address, artifacts and save options (where and what is
        kept), trust-remote-code (loading is refused or not; the model is the same). Task,
        model and space are compared on their own (:func:`autopeft.controller.resume.
        check_compatible`). The data folder may move between runs, so it is not compared.
        """
        return {**result_fields(self.budget), **result_fields(self)}

    def without_secrets(self) -> SearchSettings:
        """A copy fit to travel to Ray workers or to disk: no storage URL (passwords)."""
        return replace(self, storage=None)

    def to_stored(self) -> dict[str, Any]:
        """What the study row keeps (the budget, storage, space and resume are kept apart)."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("budget", "storage", "space", "resume")}


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse quotes what it was given ("unrecognized arguments: ..."): fold it to one
        # line of bounded length, as AutopeftError does
        message = excerpt(" ".join(message.split()), 300, quote=False)
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise AutopeftError(f"bad search arguments: {message}")


# -- flag generation ------------------------------------------------------------------------
def _flag_fields() -> list[tuple[type, Any]]:
    out: list[tuple[type, Any]] = []
    for f in fields(SearchSettings):
        if f.name == "budget":
            out += [(Budget, b) for b in fields(Budget)]
        else:
            out.append((SearchSettings, f))
    return out


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The string literal under each field of a dataclass, whitespace folded (litgpt style).

    Empty when the source cannot be read (a frozen app, say): flags then have no help.
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _base_type(owner: type, name: str) -> type:
    hint = typing.get_type_hints(owner)[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _parse_as(kind: type, name: str, meta: dict[str, Any]) -> Callable[[str], Any]:
    what = {int: "a whole number", float: "a number"}.get(kind)

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {excerpt(text)}") from None
        try:
            check_value(name, value, meta)
        except AutopeftError as exc:
            message = str(exc).removeprefix(flag_name(name) + " ")
            raise argparse.ArgumentTypeError(message) from None
        return value

    return parse


def _argparse_kwargs(owner: type, f: Any) -> dict[str, Any]:
    meta = dict(f.metadata)
    kind = _base_type(owner, f.name)
    default = f.default if f.default is not MISSING else None
    kwargs: dict[str, Any] = {"help": field_docs(owner).get(f.name), "default": default}
    if kind is bool:
        return {**kwargs, "action": "store_true"}
    if meta.get("choices"):
        kwargs["choices"] = meta["choices"]
    elif kind in (int, float):
        kwargs["type"] = _parse_as(kind, f.name, meta)
    if meta.get("required"):
        kwargs["required"] = True
        kwargs.pop("default")
    if meta.get("metavar"):
        kwargs["metavar"] = meta["metavar"]
    return kwargs
