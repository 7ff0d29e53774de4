"""`autopeft search` through the real CLI and a local Ray, then `front` and `trials`."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from autopeft.testing import tiny_model_dir

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_data")]


def _cli(*args, env=None, timeout=600, cwd=None):
    return subprocess.run([sys.executable, "-m", "autopeft.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_model_dir("bert", tmp_path_factory.mktemp("bert"))


def test_search_then_front_and_trials_in_every_format(bert_dir, store_url, tmp_path,
                                                     monkeypatch):
    monkeypatch.setenv("AUTOPEFT_HOME", str(tmp_path / "home"))
    # a relative model path: trials run in Ray workers with another working folder
    run = _cli("search", "--task", "glue/sst2", "--model", f"./{bert_dir.name}", "--space", "quick",
               "--trials", "3", "--epochs", "1", "--max-steps", "3", "--batch-size", "8",
               "--train-samples", "48", "--eval-samples", "24", "--max-length", "64",
               "--study", "e2e", "--storage", store_url, "--seed", "1", cwd=bert_dir.parent)
    assert run.returncode == 0, run.stderr[-3000:]
    progress = [ln for ln in run.stdout.splitlines() if ln.startswith("[")]
    assert [ln.split("]")[0] for ln in progress] == ["[1/3", "[2/3", "[3/3"], run.stdout
    assert "Pareto front of e2e" in run.stdout

    trials = _cli("trials", "--study", "e2e", "--storage", store_url, "-f", "json")
    assert trials.returncode == 0, trials.stderr
    rows = json.loads(trials.stdout)
    assert len(rows) == 3
    assert sorted(r["number"] for r in rows) == [0, 1, 2]
    done = [r for r in rows if r["status"] == "completed"]
    assert done, rows
    for r in done:
        assert r["trainable_params"] > 0 and r["peak_memory_bytes"] > 0
        assert 0 <= r["accuracy"] <= 1
        assert (r["unparseable_predictions"], r["eval_examples"]) == (0, 24)  # a head parses

    front = _cli("front", "--study", "e2e", "--storage", store_url, "-f", "json")
    assert front.returncode == 0, front.stderr
    front_rows = json.loads(front.stdout)
    assert 1 <= len(front_rows) <= len(done)
    assert {r["number"] for r in front_rows} <= {r["number"] for r in done}

    as_csv = _cli("front", "--study", "e2e", "--storage", store_url, "-f", "csv")
    assert len(list(csv.DictReader(io.StringIO(as_csv.stdout)))) == len(front_rows)
    table = _cli("trials", "--study", "e2e", "--storage", store_url)
    assert table.returncode == 0 and "completed" in table.stdout
    studies = _cli("studies", "--storage", store_url, "-f", "json")
    (study,) = [s for s in json.loads(studies.stdout) if s["name"] == "e2e"]
    assert study["status"] == "finished"

    # the front's adapters were kept: export one and load it back with peft
    best = front_rows[0]["number"]
    out = tmp_path / "export"
    exp = _cli("export", "--study", "e2e", "--trial", str(best), "--output", str(out),
               "--storage", store_url)
    assert exp.returncode == 0, exp.stderr
    assert (out / "adapter_config.json").is_file() and (out / "README.md").is_file()
    card = (out / "README.md").read_text()
    assert "glue/sst2" in card and "accuracy" in card
    from autopeft.methods.saving import load_adapter
    from autopeft.modeling import build_model, resolve_model

    base = build_model(resolve_model(str(bert_dir)), num_labels=2)
    assert load_adapter(base, out) is not None
    off_front = sorted({r["number"] for r in done} - {r["number"] for r in front_rows})
    if off_front:  # --save-adapters front (default) dropped the others
        gone = _cli("export", "--study", "e2e", "--trial", str(off_front[0]), "--output",
                    str(tmp_path / "x"), "--storage", store_url)
        assert gone.returncode == 2 and "not on the Pareto front" in gone.stderr

    again = _cli("search", "--task", "glue/rte", "--model", str(bert_dir), "--study", "e2e",
                 "--storage", store_url, "--trials", "1")
    assert again.returncode == 2 and "cannot be continued" in again.stderr, again.stderr
