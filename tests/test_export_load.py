"""`autopeft export` output loads with `autopeft.load_adapter`, and its card says how."""

from __future__ import annotations

import subprocess
import sys

import torch

from autopeft.export import export_trial
from autopeft.methods import ModelInfo, get_method, save_adapter
from autopeft.store import Store
from autopeft.testing import tiny_batch, tiny_bert

LOAD = (
    "import sys, torch\n"
    "from autopeft.testing import tiny_batch, tiny_bert\n"
    "base = tiny_bert()\n"
    "{load}\n"
    "with torch.no_grad():\n"
    "    print(repr(model.eval()(**tiny_batch(model.config, batch_size=2)).logits.sum().item()))\n"
)


def _saved(method: str, folder) -> float:
    """Train-like weights for ``method`` on tiny BERT, saved to ``folder``; its output."""
    model = tiny_bert()
    model = get_method(method).build(model, None, ModelInfo.from_config(model.config))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(1)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    save_adapter(model.eval(), method, folder)
    with torch.no_grad():
        return model(**tiny_batch(model.config, batch_size=2)).logits.sum().item()


def _run(code: str, folder) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True,
                          text=True, timeout=300)


def test_exported_custom_tuner_loads_with_autopeft_load_adapter(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    expected = _saved("houlsby", tmp_path / "artifacts" / "saved")
    with Store(url) as store:
        store.create_study("s", task="glue/rte", model="prajjwal1/bert-tiny", space_name="x",
                           space={}, budget={}, hardware={},
                           settings={"artifacts_dir": str(tmp_path / "artifacts")},
                           objectives=[("accuracy", "maximize")])
        store.add_trial("s", number=0, method="houlsby", params={}, learning_rate=1e-3,
                        status="completed", primary_metric=0.7, metrics={"accuracy": 0.7},
                        trainable_params=10,
                        extra={"adapter_path": str(tmp_path / "artifacts" / "saved")})
        out = export_trial(store, "s", 0, tmp_path / "export")
    card = (out / "README.md").read_text()
    assert 'model = autopeft.load_adapter(base, "<this folder>")' in card
    assert "`KeyError: 'AUTOPEFT_ADAPTER'`" in card and "register_tuners()" in card
    assert "| parameters | `{" in card and '"reduction_factor": 16' in card  # defaults shown
    # in a fresh process: plain peft fails on our type; autopeft.load_adapter loads it
    plain = _run(LOAD.format(load="from peft import PeftModel\n"
                             "model = PeftModel.from_pretrained(base, sys.argv[1])"), out)
    assert plain.returncode != 0 and "KeyError: 'AUTOPEFT_ADAPTER'" in plain.stderr
    ours = _run(LOAD.format(load="import autopeft\n"
                            "model = autopeft.load_adapter(base, sys.argv[1])"), out)
    assert ours.returncode == 0, ours.stderr[-2000:]
    assert float(ours.stdout.strip().splitlines()[-1]) == expected


def test_card_of_a_peft_native_method_names_both_ways(tmp_path):
    from types import SimpleNamespace

    from autopeft.export import model_card

    study = SimpleNamespace(name="s", task="glue/rte", model="bert-base-uncased", primary="acc",
                            settings={"sampler": "tpe", "seed": 0}, budget={}, space_name="x")
    trial = SimpleNamespace(number=3, method="lora", params={"r": 4}, learning_rate=1e-3,
                            metrics={"acc": 0.7}, trainable_params=10, total_params=100,
                            peak_memory_bytes=None, memory_kind=None, is_pareto=True)
    card = model_card(study, trial, "sqlite:///x", peft_type="LORA")
    assert "autopeft.load_adapter(base" in card and "KeyError" not in card
    assert "With plain peft, `PeftModel.from_pretrained" in card
    assert '"lora_alpha": 16' in card and '"r": 4' in card
    bitfit = SimpleNamespace(**{**vars(trial), "method": "bitfit", "params": {}})
    assert "KeyError: 'AUTOPEFT_BITFIT'" in model_card(study, bitfit, "u", "AUTOPEFT_BITFIT")
