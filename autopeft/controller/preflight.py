"""The pre-flight of a search: every check of its input, before anything is written.

An input that passes every check here and then fails each trial one after another burns the
whole budget and exits 0 (a truncated weights file, ``layers: "10-20"`` on a 6-layer model,
an artifacts folder that is a file, a profile where nothing fits). So :func:`preflight` runs
every check a trial would fail on, cheaply (weight file headers, placements on a ``meta``
model, one memory prediction per method at most), and returns what it resolved for the
search to use. It writes nothing: no study row, no folder. A study that is continued must
have been run with the same task, model, space and every result-changing setting
(:meth:`~autopeft.settings.SearchSettings.result_settings`).

It is a function over the settings rather than a method of them: :mod:`autopeft.settings`
is imported by ``--help`` and by every layer, and must not import the controller.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autopeft.errors import AutopeftError, NeedsWeights, excerpt
from autopeft.settings import SearchSettings

# Placement combinations checked per method; beyond, each value is checked on its own.
MAX_PLACEMENT_COMBOS = 32
# More training inputs cut at --max-length than this share gets a note.
TRUNCATED_NOTE_SHARE = 0.5


@dataclass
class Preflight:
    """What the pre-flight resolved: the search runs on exactly this."""

    spec: Any
    space: Any
    store: Any
    name: str
    existing: Any
    ref: Any
    data: Any
    profile: Any
    artifacts: Path


def artifacts_root(settings: SearchSettings, name: str) -> Path:
    """Where a study's trials keep what they trained: ``<artifacts dir>/<study>/trial-N``."""
    from autopeft.paths import autopeft_home

    base = Path(settings.artifacts_dir).expanduser() if settings.artifacts_dir else (
        autopeft_home() / "artifacts")
    return (base / name).resolve()


def make_study_name(task: str, model: str) -> str:
    """A study name made up from task, model and time, following the rule of ``--study``."""
    import re
    from datetime import datetime

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(model.rstrip("/")).name or model
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "-", f"{task.replace('/', '-')}-{base}").lower()
    return f"{name[:120 - len(stamp) - 1]}-{stamp}"


def preflight(settings: SearchSettings, say: Callable[[str], None], *,
              space: Any = None) -> Preflight:
    """Check everything a search needs; AutopeftError (one line) on the first problem.

    ``space`` is a loaded search space to use instead of ``settings.space`` (``confirm``
    runs with the study's stored space).

    Order: cheap checks first (task, space, store, study, model files), then the ones that
    load or predict (tokenizer, data, placements, memory).
    """
    from autopeft.controller import resume
    from autopeft.modeling import check_weights, load_tokenizer, resolve_model
    from autopeft.runner.data import tokenize_task
    from autopeft.space import load_space
    from autopeft.store import Store
    from autopeft.tasks import get_task, load_task

    spec = get_task(settings.task)
    space = space if space is not None else load_space(settings.space)
    store = Store(settings.storage)
    name = settings.study or make_study_name(settings.task, settings.model)
    existing = store.get_study(name)
    if settings.resume and existing is None:
        raise AutopeftError(f"no study named '{name}' to resume in {store.safe_url}; "
                            "`autopeft studies` lists them")
    ref = resolve_model(settings.model, trust_remote_code=settings.trust_remote_code)
    if not ref.has_weights:
        raise AutopeftError(f"model folder '{settings.model}' holds a config only (no weights): "
                            "use `autopeft estimate` for it, or give a folder with weights")
    check_weights(ref)
    space = applicable_space(space, ref, spec, settings, say)
    if existing is not None:
        resume.check_compatible(existing, task=spec.name, model=settings.model,
                                model_path=ref.path, space=space.to_dict(),
                                settings=settings.result_settings())
        resume.check_not_running_elsewhere(existing)
    check_placements(space, ref, spec, settings)
    tokenizer = load_tokenizer(ref, trust_remote_code=settings.trust_remote_code)
    check_max_length(spec, tokenizer, ref, settings.max_length)
    t0 = time.perf_counter()
    task_data = load_task(spec, data_dir=settings.data_dir, train_samples=settings.train_samples,
                          eval_samples=settings.eval_samples, seed=settings.seed)
    data = tokenize_task(task_data, tokenizer, is_seq2seq=ref.is_seq2seq,
                         max_length=settings.max_length)
    say(f"task {spec.name}: {len(data.train)} train / {len(data.eval)} eval examples from "
        f"{data.source}, tokenised once in {time.perf_counter() - t0:.1f}s")
    check_positions(data, ref)
    cut = sum(1 for n in data.train_lengths if n >= settings.max_length)
    if cut > TRUNCATED_NOTE_SHARE * len(data.train):
        say(f"note: {cut} of {len(data.train)} training inputs are cut at --max-length "
            f"{settings.max_length} tokens")
    profile = resolve_search_profile(settings, say)
    if profile is not None:
        check_something_fits(space, settings, data, profile, ref.config)
    stored_dir = (existing.settings or {}).get("artifacts_dir") if existing is not None else None
    artifacts = Path(stored_dir) if stored_dir else artifacts_root(settings, name)
    check_writable(artifacts)
    return Preflight(spec=spec, space=space, store=store, name=name, existing=existing, ref=ref,
                     data=data, profile=profile, artifacts=artifacts)


def applicable_space(space: Any, ref: Any, spec: Any, settings: SearchSettings,
                     say: Callable[[str], None]) -> Any:
    """Drop methods that cannot apply to the model (checked on a meta-device copy)."""
    from autopeft.methods.base import ModelInfo, get_method
    from autopeft.modeling import build_model

    meta = build_model(ref, num_labels=spec.num_labels, device="meta",
                       trust_remote_code=settings.trust_remote_code)
    info = ModelInfo.from_config(meta.config)
    keep = []
    for name in space.methods:
        reason = get_method(name).check(meta, info)
        if reason:
            say(f"note: method '{name}' does not apply to {settings.model} ({reason}); "
                "excluded from this search")
        else:
            keep.append(name)
    if not keep:
        raise AutopeftError(f"no method of search space '{space.name}' applies to {settings.model}")
    return space.restrict(keep) if len(keep) < len(space.methods) else space


def resolve_search_profile(settings: SearchSettings, say: Callable[[str], None]) -> Any:
    """The hardware profile trials are planned for (None with ``--profile none``)."""
    from autopeft.hardware import resolve_profile
    from autopeft.precision import profile_dtype

    if settings.profile == "none":
        return None
    profile, detection = resolve_profile(settings.profile)
    # Refuses --precision bf16/fp16 for a CPU profile before anything is stored: its trials
    # would train in fp32 while the study recorded 16 bits.
    profile_dtype(settings.precision, profile)
    how = "detected" if detection is not None else "as asked"
    if detection is not None and detection.reason:
        how += f"; {detection.reason}"
    say(f"profile {profile.name} ({how}): {profile.trial_budget_bytes() / 2**30:.1f} GiB per "
        "trial; configurations predicted not to fit are never trained")
    return profile


def _size_key(value: Any) -> float:
    if isinstance(value, (list, tuple)):
        return len(value)
    if isinstance(value, (bool, int, float)):
        return float(value)
    return 0.0  # strings (layers: all, upper_half): the first one written


def smallest_params(method_space: Any) -> dict[str, Any]:
    """A method's smallest configuration in the space: range lows, the least of each choice
    (fewest modules, lowest number), fixed values as they are."""
    out = {}
    for pname, spec in method_space.params.items():
        if spec.kind in ("int", "float"):
            out[pname] = spec.low
        else:
            out[pname] = min(spec.values, key=_size_key)
    return out


def check_placements(space: Any, ref: Any, spec: Any, settings: SearchSettings) -> None:
    """Apply each method with each placement the space allows (module groups, layers) to a
    meta copy of the model, as the trial runner would: a group that matches no module or a
    layer range beyond the model's is refused now, not once per trial."""
    from autopeft.memory.step import apply_method
    from autopeft.modeling import build_model
    from autopeft.space.loader import PLACEMENT_PARAMS

    for mname, ms in space.methods.items():
        base = smallest_params(ms)
        axes = [(p, ms.params[p].values) for p in PLACEMENT_PARAMS
                if p in ms.params and ms.params[p].values]
        combos = list(itertools.islice(itertools.product(*(v for _, v in axes)),
                                       MAX_PLACEMENT_COMBOS + 1))
        if len(combos) > MAX_PLACEMENT_COMBOS:  # each value once, the others at the smallest
            trials = [{p: v} for p, values in axes for v in values]
        else:
            trials = [dict(zip((p for p, _ in axes), combo, strict=True)) for combo in combos]
        for placement in trials:
            meta = build_model(ref, num_labels=spec.num_labels, device="meta",
                               trust_remote_code=settings.trust_remote_code)
            try:
                apply_method(meta, mname, {**base, **placement})
            except NeedsWeights:
                break  # its initialisation reads weights: the trial runner checks it
            except AutopeftError as exc:
                where = ", ".join(f"{k}={excerpt(v)}" for k, v in placement.items())
                raise AutopeftError(
                    f"search space {space.name}: methods.{mname} with {where or 'its values'} "
                    f"does not fit {settings.model}: {exc}"
                ) from None


def check_max_length(spec: Any, tokenizer: Any, ref: Any, max_length: int) -> None:
    """Refuse a --max-length that cannot hold one word per text field.

    Refused rather than warned about: an input cut to its special tokens (and, for T5, the
    task prefix) carries no text, so every trial would train on nothing and end at chance.
    The shortest real input (a one-letter word in each field) is tokenised by the code the
    trials use.
    """
    from autopeft.runner.data import tokenize_task
    from autopeft.tasks import Example, TaskData

    label = 0.0 if spec.is_regression else 0
    probe = Example(texts=("a",) * len(spec.text_fields), label=label)
    prepared = tokenize_task(TaskData(spec, [probe], [probe], "probe"), tokenizer,
                             is_seq2seq=ref.is_seq2seq, max_length=4096)
    shortest = len(prepared.train[0]["input_ids"])
    if max_length < shortest:
        raise AutopeftError(
            f"--max-length {max_length} leaves no room for text: with the special tokens of "
            f"'{ref.name}'{' and the task prefix' if ref.is_seq2seq else ''}, one word per "
            f"field of {spec.name} already takes {shortest} tokens; give at least {shortest} "
            "(256, the default, holds most GLUE inputs)"
        )


def check_positions(data: Any, ref: Any) -> None:
    """Refuse inputs longer than the model's position embeddings (BERT: 512): every trial
    would fail on its first long batch. Models with relative positions (T5) have no limit."""
    from autopeft.modeling import max_positions

    positions = max_positions(ref)
    if positions is None:
        return
    longest = max(data.train_lengths + data.eval_lengths)
    if longest > positions:
        raise AutopeftError(
            f"inputs of up to {longest} tokens do not fit the {positions} positions of "
            f"'{ref.name}'; give --max-length {positions} or less"
        )


def check_something_fits(space: Any, settings: SearchSettings, data: Any, profile: Any,
                         model_config: Any) -> None:
    """Refuse a profile on which not even the smallest configuration of any method fits.

    One prediction per method at most (the first that fits ends it; full fine-tuning, the
    largest, last), with the planner the search uses at one example per micro-batch: the
    planner's last resort, so what does not fit then never fits.
    """
    from dataclasses import replace

    from autopeft.controller.feasibility import Planner

    planner = replace(Planner.for_study(settings, data, profile, model_config), batch_size=1,
                      cache={})
    reasons = []
    for mname in sorted(space.methods, key=lambda m: m == "full"):
        plan = planner.plan(mname, smallest_params(space.methods[mname]))
        if plan.fits:
            return
        reasons.append(f"{mname}: {plan.reason}")
    raise AutopeftError(
        f"no configuration of search space '{space.name}' fits profile '{profile.name}' "
        f"({profile.trial_budget_bytes() / 2**30:.2f} GiB per trial): even the smallest does "
        f"not ({reasons[0]}); plan for a larger --profile, lower --batch-size or --max-length, "
        "or give --profile none"
    )


def check_writable(folder: Path) -> None:
    """The folder, or the nearest folder above it that exists, takes a new file.

    Nothing is created: a temporary file is written and removed in the nearest existing
    folder (a read-only file system or a file in the way is found now, not after each trial
    has trained).
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise AutopeftError(f"artifacts folder {folder}: {existing} is a file, not a folder; "
                            "give --artifacts-dir a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise AutopeftError(f"artifacts folder {folder}: cannot write in {existing} "
                            f"({exc.strerror or exc}); give --artifacts-dir a writable "
                            "folder") from None
