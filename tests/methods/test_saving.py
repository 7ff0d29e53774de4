"""save_adapter -> load_adapter (plain ``PeftModel.from_pretrained``) gives identical outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from peft import PeftModel

from autopeft.errors import AutopeftError
from autopeft.methods import ModelInfo, count_parameters, get_method, list_methods
from autopeft.methods.saving import load_adapter, register_tuners, save_adapter
from autopeft.testing import tiny_batch, tiny_bert, tiny_t5

ARCHS = {"t5": tiny_t5, "bert": tiny_bert}
TINY = {"compacter": {"reduction_factor": 4}, "compacter++": {"reduction_factor": 4},
        "mam": {"mlp_width": 8, "layers": "mask:01"}, "unipelt": {"mlp_width": 8}}
CASES = [(arch, m.name) for arch in ARCHS for m in list_methods()
         if (arch, m.name) != ("t5", "bitfit")]


def trained(arch: str, name: str):
    """The method on a tiny model, its trainable parameters moved off their initial values."""
    model = ARCHS[arch]()
    model = get_method(name).build(model, TINY.get(name), ModelInfo.from_config(model.config))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(1)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("arch, name", CASES, ids=[f"{a}-{n}" for a, n in CASES])
def test_save_then_load_gives_identical_outputs(arch, name, tmp_path):
    model = trained(arch, name)
    batch = tiny_batch(model.config, batch_size=3)
    with torch.no_grad():
        expected = model(**batch).logits
    save_adapter(model, name, tmp_path)

    files = {p.name for p in tmp_path.iterdir()}
    if name == "full":
        assert {"config.json", "model.safetensors"} <= files
    else:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= files
        # Only what trained is saved, never a copy of the base model.
        assert (tmp_path / "adapter_model.safetensors").stat().st_size < 4 * 1024 * 1024

    loaded = load_adapter(ARCHS[arch](), tmp_path)
    assert isinstance(loaded, PeftModel) == (name != "full")
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, expected)


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("init", ["pissa", "pissa_niter_2", "olora", "mica", "orthogonal"])
def test_lora_inits_reload_on_the_original_weights(arch, init, tmp_path):
    """PiSSA / OLoRA mutate the base weights: the saved adapter is peft's conversion to a
    plain LoRA of rank 2r, which must reproduce the outputs on a fresh, unmutated model."""
    model = ARCHS[arch]()
    model = get_method("lora").build(model, {"init_lora_weights": init},
                                     ModelInfo.from_config(model.config))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(1)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    model.eval()
    batch = tiny_batch(model.config, batch_size=3)
    with torch.no_grad():
        expected = model(**batch).logits
    save_adapter(model, "lora", tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    mutating = init in ("pissa", "pissa_niter_2", "olora")
    assert config["r"] == (16 if mutating else 8)
    assert config["init_lora_weights"] is True if mutating else config["init_lora_weights"] == init
    loaded = PeftModel.from_pretrained(ARCHS[arch](), str(tmp_path)).eval()
    with torch.no_grad():
        got = loaded(**batch).logits
    if mutating:
        # W_res + B0 A0 equals W up to float32 rounding, not bit for bit.
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    else:
        assert torch.equal(got, expected)
    fresh_outputs = ARCHS[arch]().eval()
    with torch.no_grad():
        base = fresh_outputs(**batch).logits
    assert not torch.allclose(got, base, atol=1e-3), "the trained adapter (and head) must load"


@pytest.mark.parametrize("name", ["houlsby", "bitfit", "unipelt"])
def test_loaded_adapter_is_frozen_unless_trainable(name, tmp_path):
    model = trained("bert", name)
    save_adapter(model, name, tmp_path)
    frozen = load_adapter(tiny_bert(), tmp_path)
    assert count_parameters(frozen).trainable == 0
    again = load_adapter(tiny_bert(), tmp_path, is_trainable=True)
    assert count_parameters(again) == count_parameters(model)


def test_custom_types_load_in_a_fresh_process_with_plain_peft(tmp_path):
    # The file layout is peft's; a new process needs only our registration before peft loads.
    model = trained("t5", "mam")
    batch = tiny_batch(model.config, batch_size=2)
    with torch.no_grad():
        expected = model(**batch).logits.sum().item()
    save_adapter(model, "mam", tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["peft_type"] == "AUTOPEFT_ADAPTER"
    code = (
        "import sys, torch\n"
        "from peft import PeftModel\n"
        "from autopeft.methods.saving import register_tuners\n"
        "from autopeft.testing import tiny_batch, tiny_t5\n"
        "register_tuners()\n"
        "model = PeftModel.from_pretrained(tiny_t5(), sys.argv[1]).eval()\n"
        "with torch.no_grad():\n"
        "    print(repr(model(**tiny_batch(model.config, batch_size=2)).logits.sum().item()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True,
                         capture_output=True, text=True).stdout
    assert float(out.strip().splitlines()[-1]) == expected


def test_registration_is_idempotent():
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    register_tuners()
    register_tuners()
    assert PEFT_TYPE_TO_CONFIG_MAPPING["AUTOPEFT_BITFIT"].__name__ == "BitFitConfig"


def test_save_and_load_errors(tmp_path):
    lora = trained("bert", "lora")
    with pytest.raises(AutopeftError, match="method 'full' trains a plain model"):
        save_adapter(lora, "full", tmp_path / "a")
    with pytest.raises(AutopeftError, match="method 'lora' builds a peft model"):
        save_adapter(tiny_bert(), "lora", tmp_path / "b")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AutopeftError, match="holds no saved method"):
        load_adapter(tiny_bert(), tmp_path / "empty")
