"""``autopeft export``: a trial's trained adapter in peft format, with a model card.

The adapter files are the ones the trial saved (``adapter_config.json`` +
``adapter_model.safetensors``; a whole model for full fine-tuning run with ``--save-full``),
copied unchanged, so ``PeftModel.from_pretrained`` loads them. A README.md records the task,
metrics, parameters and where the result came from.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from autopeft import __version__
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


def export_trial(store: Any, study_name: str, number: int, output: str | Path) -> Path:
    """Copy trial ``number``'s saved adapter to ``output`` and write its model card."""
    study = store.require_study(study_name)
    trials = {t.number: t for t in store.trials(study_name)}
    if number not in trials:
        raise AutopeftError(f"study '{study_name}' has no trial {number}; `autopeft trials "
                            f"--study {study_name}` lists them")
    trial = trials[number]
    if trial.status != TrialStatus.COMPLETED:
        raise AutopeftError(f"trial {number} of study '{study_name}' is {trial.status}, not "
                            "completed: it has nothing to export")
    source = (trial.extra or {}).get("adapter_path")
    if not source or not Path(source).is_dir():
        raise _missing(study, trial)
    out = Path(output).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AutopeftError(f"--output {out} exists and is not an empty folder; give a new one")
    shutil.copytree(source, out, dirs_exist_ok=True)
    config = out / "adapter_config.json"
    peft_type = json.loads(config.read_text()).get("peft_type") if config.is_file() else None
    (out / "README.md").write_text(model_card(study, trial, store.safe_url, peft_type))
    return out
