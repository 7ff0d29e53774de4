"""`autopeft estimate` and `autopeft profile` through the CLI."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import pytest


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "autopeft.cli.main", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("method, params, trainable, percent", [
    ("lora", ["--param", "r=8", "--param", "target_modules=q,v"], "2,359,296", "0.320%"),
    ("ia3", [], "344,064", "0.047%"),
    ("loha", [], "4,718,592", "0.640%"),  # a peft-table method: 2 * r * (in + out) on q, v
])
def test_estimate_t5_large_from_config_alone(shared_dir, method, params, trainable, percent):
    run = _cli("estimate", "--model", str(shared_dir / "models/configs/t5-large"),
               "--method", method, *params, "-f", "json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["base_params"] == 737_668_096
    assert out["trainable_params"] == int(trainable.replace(",", ""))
    assert f"{100 * out['trainable_fraction']:.3f}%" == percent
    assert out["method"] == method and out["params"]["layers"] == "all"  # defaults included
    assert out["total_params"] >= out["base_params"]
    if method == "ia3":  # CSV: the same keys, one row of plain numbers
        run = _cli("estimate", "--model", str(shared_dir / "models/configs/t5-large"),
                   "--method", method, "-f", "csv")
        row = next(csv.DictReader(io.StringIO(run.stdout)))
        assert list(row) == list(out)
        assert int(row["trainable_params"]) == out["trainable_params"]
        assert float(row["trainable_fraction"]) == out["trainable_fraction"]
        assert json.loads(row["params"]) == out["params"]


def test_estimate_predicts_memory_and_checks_a_profile(shared_dir):
    run = _cli("estimate", "--model", str(shared_dir / "models/configs/t5-small"), "--method",
               "lora", "--batch-size", "4", "--seq-len", "64", "--profile", "t4-16gb",
               "-f", "json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert (out["device"], out["dtype"], out["batch_size"], out["seq_len"]) == (
        "cuda", "fp16", 4, 64)
    parts = ("weights_bytes", "trainable_state_bytes", "activations_bytes", "temporaries_bytes")
    assert all(isinstance(out[k], int) for k in ("predicted_peak_bytes", *parts))
    assert 0 < out["predicted_peak_bytes"] < 16 * 2**30
    assert out["predicted_peak_bytes"] == sum(out[k] for k in parts)
    assert out["profile"] == "t4-16gb" and out["fits"] is True
    assert out["profile_budget_bytes"] == pytest.approx(13.5 * 2**30, rel=0.01)
    # every key is snake_case and every value a number, a name, a bool, or the params
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", k) for k in out)
    names = ("model", "method", "device", "dtype", "profile")
    assert not [k for k, v in out.items() if isinstance(v, str) and k not in names]


def test_profile_lists_and_shows():
    listed = _cli("profile", "--list", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    names = {p["name"] for p in json.loads(listed.stdout)}
    assert {"a100-40gb", "a100-80gb", "h100-80gb", "h200-141gb", "l4-24gb", "t4-16gb",
            "v100-16gb", "v100-32gb", "a10g-24gb", "rtx4090-24gb", "rtx3090-24gb",
            "cpu"} <= names
    shown = _cli("profile", "--profile", "a100-80gb", "-f", "json")
    payload = json.loads(shown.stdout)
    assert payload["profile"]["name"] == "a100-80gb"
    assert payload["detected_profile"]["name"] == "cpu"  # no GPU on these machines
    assert "NVML" in (payload["detection"]["reason"] or "")


@pytest.mark.parametrize("args, needle", [
    (["estimate", "--model", "{t5}", "--method", "loar"], "unknown method"),
    (["estimate", "--model", "{t5}", "--method", "lora", "--param", "rank=4"], "rank"),
    (["estimate", "--model", "{t5}", "--method", "lora", "--param", "r"], "KEY=VALUE"),
    (["estimate", "--model", "{t5}", "--method", "lora", "--batch-size", "4"], "--seq-len"),
    (["estimate", "--model", "{t5}", "--method", "bitfit"], "does not apply"),
    (["estimate", "--model", "{t5}", "--method", "shira"],
     "cannot estimate method 'shira' from the config alone"),
    (["estimate", "--model", "{t5}", "--method", "lora", "--param", "target_modules=zz"], "zz"),
    (["profile", "--profile", "nosuchgpu"], "nosuchgpu"),
    (["search", "--task", "glue/sst2", "--model", "{minilm}", "--profile", "nosuchgpu",
      "--storage", "sqlite:///{tmp}/s.db"], "nosuchgpu"),
    # CPU trials train in fp32: 16 bits asked for a CPU profile are refused, not recorded
    (["search", "--task", "glue/sst2", "--model", "{minilm}", "--profile", "cpu",
      "--precision", "fp16", "--storage", "sqlite:///{tmp}/s.db"], "--precision fp16 needs"),
    (["estimate", "--model", "{t5}", "--method", "lora", "--batch-size", "4", "--seq-len", "8",
      "--profile", "cpu", "--dtype", "bf16"], "--precision bf16 needs a CUDA GPU"),
])
def test_planning_errors_are_one_line(args, needle, shared_dir, tmp_path):
    args = [a.format(t5=shared_dir / "models/configs/t5-small", tmp=tmp_path,
                     minilm=shared_dir / "models/all-MiniLM-L6-v2") for a in args]
    run = _cli(*args)
    assert run.returncode == 2, (run.stdout[-1000:], run.stderr[-2000:])
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], run.stderr
