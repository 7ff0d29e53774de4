"""The bad-input table: every CLI error is one line, exit code 2, no traceback, no rows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

MINILM = "{shared}/models/all-MiniLM-L6-v2"
S = ["search", "--task", "glue/sst2", "--model", MINILM]

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


@pytest.fixture
def files(tmp_path, shared_dir):
    (tmp_path / "empty").mkdir()
    spaces = {
        "space_ok": "name: ok\nmethods:\n  lora: {}\n",
        "space_method": "name: x\nmethods:\n  loar: {}\n",
        "space_yaml": "name: x\nmethods: [lora\n",
        "space_range": "name: x\nmethods:\n  lora:\n    learning_rate: {low: 1.0, high: 0.1}\n",
        "space_key": "name: x\nmethods:\n  lora: {}\nmethod: lora\n",
    }
    out = {"shared": str(shared_dir), "empty": str(tmp_path / "empty")}
    for key, text in spaces.items():
        (tmp_path / f"{key}.yaml").write_text(text)
        out[key] = str(tmp_path / f"{key}.yaml")
    return out


@pytest.mark.parametrize("label, args, needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input(label, args, needle, files, tmp_path):
    from autopeft.store import Store

    db = f"sqlite:///{tmp_path}/store.db"
    store = Store(db)
    store.create_study("taken", task="glue/sst2", model="m", space_name="quick", space={},
                       budget={}, hardware={}, settings={}, objectives=[("accuracy", "maximize")])
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
    assert "Traceback" not in run.stderr and "s3cret" not in run.stderr + run.stdout
    assert os.listdir(files["empty"]) == []  # no folder or database created on the side
    studies = Store(db).list_studies()  # nothing half-written
    assert [s.name for s in studies] == ["taken"] and studies[0].n_trials == 0
