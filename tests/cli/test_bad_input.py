"""The bad-input table: every CLI error is one line, exit code 2, no traceback, no rows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

MINILM = "{shared}/models/all-MiniLM-L6-v2"
S = ["search", "--task", "glue/sst2", "--model", MINILM]
# Cases that reach the later checks: a small task and subsample, so that each stays quick.
R = ["search", "--task", "glue/rte", "--train-samples", "32", "--eval-samples", "16",
     "--space", "quick", "--profile", "none"]
F = R + ["--model", MINILM]

CASES = [
    ("unknown task", ["search", "--task", "glue/nope", "--model", MINILM], "unknown task"),
    ("ambiguous task", ["search", "--task", "rte", "--model", MINILM], "ambiguous"),
    ("missing model path", ["search", "--task", "glue/sst2", "--model", "./no/such"],
     "does not exist"),
    ("model folder without config", ["search", "--task", "glue/sst2", "--model", "{empty}"],
     "no config.json"),
    ("model path is a file", ["search", "--task", "glue/sst2", "--model", "{space_ok}"],
     "is a file"),
    ("hub id offline", ["search", "--task", "glue/sst2", "--model", "google/t5-nope"],
     "hub is unreachable"),
    ("config-only model", ["search", "--task", "glue/sst2", "--model",
                           "{shared}/models/configs/t5-small"], "config only"),
    ("unknown method in space", S + ["--space", "{space_method}"], "unknown method"),
    ("malformed space yaml", S + ["--space", "{space_yaml}"], "line"),
    ("bad range in space", S + ["--space", "{space_range}"], "low must be < high"),
    ("unknown key in space", S + ["--space", "{space_key}"], "unknown"),
    ("missing space file", S + ["--space", "/no/such/space.yaml"], "space"),
    ("unknown space name", S + ["--space", "nosuchspace"], "nosuchspace"),
    ("malformed storage url", ["studies", "--storage", "notaurl"], "storage URL"),
    ("unknown storage driver", ["studies", "--storage", "mysql+nosuchdriver://u@h/db"],
     "storage"),
    ("unreachable database", ["studies", "--storage",
                              "postgresql+psycopg2://u:s3cret@127.0.0.1:1/db"], "cannot open"),
    ("unreachable ray address", S + ["--ray-address", "127.0.0.1:1"], "cannot reach the Ray"),
    ("malformed ray address", S + ["--ray-address", "nohostport"], "bad --ray-address"),
    ("zero trials", S + ["--trials", "0"], "must be positive"),
    ("negative epochs", S + ["--epochs", "-1"], "must be positive"),
    ("zero max steps", S + ["--max-steps", "0"], "must be positive"),
    ("zero trial timeout", S + ["--trial-timeout", "0"], "must be positive"),
    ("negative time budget", S + ["--time-budget", "-5"], "must be positive"),
    ("zero concurrency", S + ["--concurrency", "0"], "must be positive"),
    ("zero batch size", S + ["--batch-size", "0"], "must be positive"),
    ("zero train samples", S + ["--train-samples", "0"], "must be positive"),
    ("non-numeric trials", S + ["--trials", "many"], "whole number"),
    ("unknown sampler", S + ["--sampler", "cmaes"], "invalid choice"),
    ("missing task flag", ["search", "--model", MINILM], "--task"),
    ("bad study name", S + ["--study", "a b"], "bad study name"),
    ("resume without study", S + ["--resume"], "--resume needs --study"),
    ("resume unknown study", S + ["--resume", "--study", "ghost"], "no study named 'ghost'"),
    ("study used for another task", ["search", "--task", "glue/rte", "--model", MINILM,
                                     "--study", "taken", "--space", "quick"],
     "cannot be continued"),
    ("data dir without the task", S + ["--data-dir", "{empty}"], "glue/sst2"),
    ("front of unknown study", ["front", "--study", "ghost"], "no study named"),
    ("trials of unknown study", ["trials", "--study", "ghost"], "no study named"),
    ("unknown subcommand", ["serach"], "invalid choice"),
    # issue 13: inputs that burned memory, crashed, or passed and then failed every trial
    ("alias bomb as a space", S + ["--space", "{bomb}"], "aliases are expanded"),
    ("alias bomb as a profile", ["profile", "--profile", "{bomb}"], "aliases are expanded"),
    ("small alias bomb quoted short", ["profile", "--profile", "{bomb4}"], "device must be"),
    ("recursive alias in a space", S + ["--space", "{space_recursive}"], "recursive"),
    ("space nested too deep", S + ["--space", "{space_deep}"], "nested more than"),
    ("model folder without tokenizer", R + ["--model", "{no_tokenizer}"], "no usable tokenizer"),
    ("truncated model.safetensors", R + ["--model", "{truncated}"], "truncated"),
    ("config.json not JSON", R + ["--model", "{bad_config}"], "cannot read config.json"),
    ("target module that matches nothing", F + ["--space", "{space_zzz}"], "matches no"),
    ("layers beyond the model", F + ["--space", "{space_layers}"], "out of range"),
    ("artifacts dir is a file", F + ["--artifacts-dir", "{a_file}"], "is a file"),
    ("artifacts dir under a file", F + ["--artifacts-dir", "{a_file}/sub"], "is a file"),
    ("infinite epochs", S + ["--epochs", "inf"], "finite"),
    ("nan time budget", S + ["--time-budget", "nan"], "finite"),
    ("profile where nothing fits", R + ["--model", MINILM, "--profile", "{tiny_profile}"],
     "no configuration"),
    ("negative seed", S + ["--seed", "-1"], "between 0 and"),
    ("seed beyond numpy's range", S + ["--seed", str(2**40)], "between 0 and"),
    ("train.tsv with a header only", F + ["--data-dir", "{data_header_train}"], "no rows"),
    ("dev.tsv with a header only", F + ["--data-dir", "{data_header_dev}"], "no rows"),
    ("non-UTF-8 train.tsv", F + ["--data-dir", "{data_latin1}"], "not UTF-8"),
    ("non-UTF-8 profile", ["profile", "--profile", "{profile_latin1}"], "not UTF-8"),
    ("non-UTF-8 space", S + ["--space", "{space_latin1}"], "not UTF-8"),
    ("non-ASCII study name", S + ["--study", "a\u00e9\u0663"], "ASCII"),
    ("max length without room for a word", F + ["--max-length", "1"], "no room for text"),
    ("max length beyond any tokenizer", S + ["--max-length", str(2**70)], "between 1 and"),
    ("estimate beyond the model's positions", ["estimate", "--model", MINILM, "--method", "lora",
                                               "--batch-size", "2", "--seq-len", "100000"],
     "beyond the 512 positions"),
    ("continued with other epochs", F + ["--study", "same", "--epochs", "1"],
     "--epochs 3.0 (asked: 1.0)"),
    ("continued with other max length", F + ["--study", "same", "--max-length", "64"],
     "--max-length 256 (asked: 64)"),
    ("continued with other train samples", F + ["--study", "same", "--train-samples", "64"],
     "--train-samples 32 (asked: 64)"),
    ("continued with other seed", F + ["--study", "same", "--seed", "1"], "--seed 0 (asked: 1)"),
]

# Hardening of runs and stores (issue 13): each row failed with a traceback, a hang or a
# file created behind the user's back before.
CASES += [
    ("sqlite url missing a slash", ["studies", "--storage", "sqlite://x.db"], "three slashes"),
    ("read-only command on a missing database",
     ["studies", "--storage", "sqlite:///{empty}/no/such/x.db"], "no such database"),
    ("front on a missing database", ["front", "--study", "s", "--storage",
                                     "sqlite:///{empty}/x.db"], "no such database"),
    ("missing postgres role", ["studies", "--storage",
                               "postgresql://nosuchrole@127.0.0.1:5432/test"],
     "createuser nosuchrole"),
    ("missing postgres database", ["studies", "--storage",
                                   "postgresql://postgres@127.0.0.1:5432/autopeft_no_such_db"],
     "createdb autopeft_no_such_db"),
    ("more cpus per trial than any node", S + ["--cpus-per-trial", "4096"], "can never be met"),
    ("trial of unknown number", ["trials", "--study", "taken", "--trial", "7"], "has no trial 7"),
    ("export of unknown study", ["export", "--study", "ghost", "--trial", "0", "--output",
                                 "{empty}/out"], "no study named"),
]


def _bomb(levels: int) -> str:
    """A YAML "billion laughs": each level lists the one below nine times, by alias."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _bomb_value(levels: int) -> str:
    """The same bomb as one flow value (for a key a loader knows: ``device: <bomb>``)."""
    parts = ['&l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    parts += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return f"[{', '.join(parts)}]"


def _model_copy(shared_dir, folder, keep):
    source = shared_dir / "models" / "all-MiniLM-L6-v2"
    folder.mkdir()
    for name in keep:
        (folder / name).symlink_to(source / name)
    return str(folder)


def _glue_rte(shared_dir, folder, train=None, dev=None):
    task = folder / "glue" / "rte"
    task.mkdir(parents=True)
    real = shared_dir / "data" / "glue" / "rte"
    for name, content in (("train.tsv", train), ("dev.tsv", dev)):
        if content is None:
            (task / name).symlink_to(real / name)
        else:
            (task / name).write_bytes(content)
    return str(folder)


@pytest.fixture
def files(tmp_path, shared_dir):
    (tmp_path / "empty").mkdir()
    spaces = {
        "space_ok": "name: ok\nmethods:\n  lora: {}\n",
        "space_method": "name: x\nmethods:\n  loar: {}\n",
        "space_yaml": "name: x\nmethods: [lora\n",
        "space_range": "name: x\nmethods:\n  lora:\n    learning_rate: {low: 1.0, high: 0.1}\n",
        "space_key": "name: x\nmethods:\n  lora: {}\nmethod: lora\n",
        "space_zzz": "name: z\nmethods:\n  lora:\n    params:\n      target_modules: "
                     "{value: [zzz]}\n",
        "space_layers": "name: l\nmethods:\n  lora:\n    params:\n      layers: "
                        "{value: '10-20'}\n",
        "space_recursive": "name: &a [x, *a]\nmethods:\n  lora: {}\n",
        "space_deep": "name: " + "[" * 100 + "]" * 100 + "\nmethods:\n  lora: {}\n",
        "bomb": _bomb(9),
        "bomb4": f"device: {_bomb_value(4)}\nmemory_bytes: 1\n",
        "tiny_profile": "device: cpu\nmemory_bytes: 1 MiB\nusable_fraction: 0.5\n",
    }
    out = {"shared": str(shared_dir), "empty": str(tmp_path / "empty")}
    for key, text in spaces.items():
        (tmp_path / f"{key}.yaml").write_text(text)
        out[key] = str(tmp_path / f"{key}.yaml")
    assert len(_bomb(9)) < 500  # a few hundred bytes that once took 13 GB
    for key in ("profile_latin1", "space_latin1"):
        (tmp_path / f"{key}.yaml").write_bytes("description: caf\u00e9\n".encode("latin-1"))
        out[key] = str(tmp_path / f"{key}.yaml")
    (tmp_path / "a_file").write_text("not a folder\n")
    out["a_file"] = str(tmp_path / "a_file")
    minilm = shared_dir / "models" / "all-MiniLM-L6-v2"
    out["no_tokenizer"] = _model_copy(shared_dir, tmp_path / "no_tok",
                                      ["config.json", "model.safetensors"])
    out["bad_config"] = _model_copy(shared_dir, tmp_path / "bad_config",
                                    ["model.safetensors", "tokenizer.json", "vocab.txt",
                                     "tokenizer_config.json", "special_tokens_map.json"])
    (tmp_path / "bad_config" / "config.json").write_text('{"model_type": "bert",\n')
    out["truncated"] = _model_copy(shared_dir, tmp_path / "truncated",
                                   ["config.json", "tokenizer.json", "vocab.txt",
                                    "tokenizer_config.json", "special_tokens_map.json"])
    with open(minilm / "model.safetensors", "rb") as src:
        (tmp_path / "truncated" / "model.safetensors").write_bytes(src.read(1 << 20))
    header = (shared_dir / "data" / "glue" / "rte" / "train.tsv").read_bytes().split(b"\n")[0]
    out["data_header_train"] = _glue_rte(shared_dir, tmp_path / "d1", train=header + b"\n")
    out["data_header_dev"] = _glue_rte(shared_dir, tmp_path / "d2", dev=header + b"\n")
    rows = (shared_dir / "data" / "glue" / "rte" / "train.tsv").read_bytes().split(b"\n")[:40]
    latin1 = b"\n".join(rows) + b"\n9999\tcaf\xe9\tb\tentailment\n"
    out["data_latin1"] = _glue_rte(shared_dir, tmp_path / "d3", train=latin1)
    return out


def _same_study(store, shared_dir):
    """A study that `F` continues: same task, model and space, other settings may differ."""
    from pathlib import Path

    from autopeft.budget import Budget
    from autopeft.settings import SearchSettings
    from autopeft.space import load_space

    model = str(shared_dir / "models" / "all-MiniLM-L6-v2")
    settings = SearchSettings(task="glue/rte", model=model, space="quick", train_samples=32,
                              eval_samples=16, profile="none", study="same")
    stored = {**settings.to_stored(), "model_path": str(Path(model).resolve())}
    store.create_study("same", task="glue/rte", model=model, space_name="quick",
                       space=load_space("quick").to_dict(), budget=Budget().to_dict(),
                       hardware={}, settings=stored, objectives=[("accuracy", "maximize")])


def _snapshot(store):
    return sorted((s.name, s.n_trials, s.status, repr(s.settings)) for s in store.list_studies())


@pytest.mark.parametrize("label, args, needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input(label, args, needle, files, tmp_path, shared_dir):
    from autopeft.store import Store

    db = f"sqlite:///{tmp_path}/store.db"
    store = Store(db)
    store.create_study("taken", task="glue/sst2", model="m", space_name="quick", space={},
                       budget={}, hardware={}, settings={}, objectives=[("accuracy", "maximize")])
    _same_study(store, shared_dir)
    before = _snapshot(store)
    args = [a.format(**files) for a in args]
    if "--storage" not in args and args[0] in ("search", "front", "trials", "studies",
                                                "export"):
        args += ["--storage", db]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "autopeft.cli.main", *args],
                         capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 2, (run.returncode, run.stdout[-2000:], run.stderr[-2000:])
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert needle.lower() in lines[0].lower(), lines[0]
    assert len(lines[0]) < 600, lines[0]  # user values are quoted as short excerpts
    assert "Traceback" not in run.stderr and "s3cret" not in run.stderr + run.stdout
    assert _snapshot(Store(db)) == before  # nothing half-written, no study touched
    assert os.listdir(files["empty"]) == []  # no folder or database created on the side
    studies = Store(db).list_studies()  # nothing half-written
    assert sorted(s.name for s in studies) == ["same", "taken"]
    assert all(s.n_trials == 0 for s in studies)
