"""``autopeft export``: a trial's trained adapter in peft format, with a model card.

The adapter files are the ones the trial saved (``adapter_config.json`` +
``adapter_model.safetensors``; a whole model for full fine-tuning run with ``--save-full``),
copied unchanged, so ``PeftModel.from_pretrained`` loads them. A README.md records the task,
metrics, parameters and where the result came from.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from autopeft import __version__
from autopeft.artifacts import copy_inside, inside
from autopeft.errors import AutopeftError
from autopeft.methods.base import effective_params
from autopeft.status import TrialStatus

# Methods whose adapters are peft's own types: every other one is autopeft's own peft tuner
# type, which plain peft loads only after register_tuners().
PEFT_NATIVE = {"lora", "lokr", "vera", "ia3", "prompt_tuning", "ln_tuning"}


def _missing(study: Any, trial: Any) -> AutopeftError:
    mode = (study.settings or {}).get("save_adapters", "front")
    if trial.method == "full" and not (study.settings or {}).get("save_full"):
        why = "full fine-tuning trials are kept only when the search runs with --save-full"
    elif mode == "none":
        why = "the search ran with --save-adapters none"
    elif mode == "front" and not trial.is_pareto:
        why = ("it is not on the Pareto front and the search kept front adapters only "
               "(--save-adapters all keeps every one)")
    else:
        why = "its saved files are gone (moved or deleted?)"
    return AutopeftError(f"trial {trial.number} of study '{study.name}' has no saved adapter: "
                         f"{why}")


def model_card(study: Any, trial: Any, safe_url: str, peft_type: str | None = None) -> str:
    """The README.md written beside the exported files.

    Args:
        peft_type: ``peft_type`` of the exported ``adapter_config.json`` (``AUTOPEFT_...``
            for autopeft's own tuner types); None: told from the method's name.
    """
    primary = study.primary
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted((trial.metrics or {}).items()))
    params = json.dumps(effective_params(trial.method, trial.params), sort_keys=True)
    total = trial.total_params or 0
    share = f" ({100 * trial.trainable_params / total:.3f}% of {total:,})" if total else ""
    peak = f"{trial.peak_memory_bytes / 2**20:.0f} MiB" if trial.peak_memory_bytes else "-"
    base = "AutoModelForSeq2SeqLM" if "t5" in study.model.lower() else (
        "AutoModelForSequenceClassification")
    if trial.method == "full":
        usage = f"model = {base}.from_pretrained(\"<this folder>\")\n"
        note = ""
    else:
        usage = (f"import autopeft\nfrom transformers import {base}\n\n"
                 f"base = {base}.from_pretrained(\"{study.model}\")\n"
                 "model = autopeft.load_adapter(base, \"<this folder>\")  # a peft PeftModel\n")
        own = (peft_type or "").startswith("AUTOPEFT_") if peft_type else (
            trial.method not in PEFT_NATIVE)
        note = (f"\n`{trial.method}` is saved as autopeft's own peft tuner type "
                f"`{peft_type or 'AUTOPEFT_ADAPTER'}`: plain `PeftModel.from_pretrained` fails "
                f"with `KeyError: '{peft_type or 'AUTOPEFT_ADAPTER'}'` unless "
                "`autopeft.methods.saving.register_tuners()` ran first in that process "
                "(`autopeft.load_adapter` does it).\n" if own else
                "\nWith plain peft, `PeftModel.from_pretrained(base, \"<this folder>\")` "
                "loads it as well.\n")
    return f"""# {trial.method} on {study.task} — trial {trial.number} of study `{study.name}`

| | |
|---|---|
| task | {study.task} (primary metric: {primary}) |
| base model | {study.model} |
| method | {trial.method} |
| parameters | `{params}` |
| learning rate | {trial.learning_rate} |
| dev metrics | {metrics or "-"} |
| trainable parameters | {trial.trainable_params:,}{share} |
| peak memory | {peak} ({trial.memory_kind or "-"}) |
| on the Pareto front | {"yes" if trial.is_pareto else "no"} |

Found by autopeft {__version__}: study `{study.name}` in `{safe_url}`, search space
`{study.space_name}`, sampler {(study.settings or {}).get("sampler")}, seed
{(study.settings or {}).get("seed")}, budget {json.dumps(study.budget, sort_keys=True)}.

## Load

```python
{usage}```
{note}"""


def _output(output: str | Path) -> Path:
    """The export target, checked: a new or empty folder (never a link to follow)."""
    out = Path(output).expanduser().absolute()
    if out.is_symlink():
        raise AutopeftError(f"--output {out} is a symbolic link (to {os.readlink(out)}); "
                            "give a new folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AutopeftError(f"--output {out} exists and is not an empty folder; give a new one")
    return out


def _write_error(out: Path, exc: OSError) -> AutopeftError:
    why = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        why += " (free some space, or export elsewhere)"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        why += " (export to a folder you can write)"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        why += " (a file stands where a folder is needed)"
    return AutopeftError(f"cannot write --output {out}: {why}; nothing was written")


def export_trial(store: Any, study_name: str, number: int, output: str | Path) -> Path:
    """Copy trial ``number``'s saved adapter to ``output`` and write its model card.

    The files go to a hidden sibling folder first, renamed to ``output`` once complete: a
    failed export (disk full, say) leaves nothing behind, and a retry starts clean. Only a
    saved folder inside the study's artifacts folder is read, and links out of it are refused.
    """
    study = store.require_study(study_name)
    trials = {t.number: t for t in store.trials(study_name)}
    if number not in trials:
        raise AutopeftError(f"study '{study_name}' has no trial {number}; `autopeft trials "
                            f"--study {study_name}` lists them")
    trial = trials[number]
    if trial.status != TrialStatus.COMPLETED:
        raise AutopeftError(f"trial {number} of study '{study_name}' is {trial.status}, not "
                            "completed: it has nothing to export")
    stored = (trial.extra or {}).get("adapter_path")
    root = (study.settings or {}).get("artifacts_dir")
    if not stored:
        raise _missing(study, trial)
    if not root:
        raise AutopeftError(f"study '{study_name}' records no artifacts folder, so its stored "
                            "adapter path cannot be checked; nothing was exported")
    source = inside(root, stored, what=f"trial {number}'s adapter_path")
    if not source.is_dir():
        raise _missing(study, trial)
    out = _output(output)
    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
        mask = os.umask(0)
        os.umask(mask)
        tmp.chmod(0o777 & ~mask)  # mkdtemp's 0700 is for the hidden folder only
        copy_inside(source, tmp, Path(root))
        config = tmp / "adapter_config.json"
        peft_type = (json.loads(config.read_text()).get("peft_type") if config.is_file()
                     else None)
        (tmp / "README.md").write_text(model_card(study, trial, store.safe_url, peft_type))
        os.replace(tmp, out)  # atomic; replaces an empty folder
        tmp = None
    except OSError as exc:
        raise _write_error(out, exc) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return out
