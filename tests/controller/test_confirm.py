"""Confirmed front points: `search --confirm-seeds` and `autopeft confirm`, through the real
CLI and a local Ray, and a confirmation killed midway then resumed."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter

import pytest

from autopeft.testing import tiny_model_dir

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_data")]


def _cli(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "autopeft.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_model_dir("bert", tmp_path_factory.mktemp("bert"))


def _search_args(model, db, study, trials, *extra):
    return ["search", "--task", "glue/sst2", "--model", str(model), "--space", "quick",
            "--trials", str(trials), "--epochs", "1", "--max-steps", "2", "--batch-size", "8",
            "--train-samples", "32", "--eval-samples", "24", "--max-length", "48",
            "--study", study, "--storage", db, "--sampler", "random", "--seed", "3",
            "--save-adapters", "none", *extra]


def _json(*args):
    out = _cli(*args, "-f", "json")
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def _repeats(rows):
    return [r for r in rows if "confirms" in (r["extra"] or {})]


def test_confirm_seeds_reruns_the_front_and_reports_means(bert_dir, tmp_path):
    db = f"sqlite:///{tmp_path}/c.db"
    run = _cli(*_search_args(bert_dir, db, "conf", 3, "--confirm-seeds", "2"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "confirming" in run.stdout and "repeat of trial" in run.stdout, run.stdout[-3000:]
    rows = _json("trials", "--study", "conf", "--storage", db)
    repeats = _repeats(rows)
    originals = [r for r in rows if r not in repeats]
    # repeats are not new configurations: the search ran its 3 trials, no more
    assert len(originals) == 3
    numbers = [r["number"] for r in rows]
    assert len(numbers) == len(set(numbers))
    by_number = {r["number"]: r for r in rows}
    for r in repeats:
        original = by_number[r["extra"]["confirms"]]
        assert (r["method"], r["params"], r["learning_rate"]) == (
            original["method"], original["params"], original["learning_rate"])
        assert r["extra"]["seed"] in (4, 5)
    assert all(r["extra"]["seed"] == 3 for r in originals if r["status"] == "completed")

    front = _json("front", "--study", "conf", "--storage", db)
    assert front
    for point in front:
        assert {"seeds", "metric_std", "tied_with", "resolution"} <= set(point)
        mine = [r for r in repeats if r["extra"]["confirms"] == point["number"]]
        assert sorted(r["extra"]["seed"] for r in mine) == [4, 5]  # each seed once
        runs = [by_number[point["number"]]] + [r for r in mine if r["status"] == "completed"]
        assert point["seeds"] == len(runs) == 3
        accs = [r["accuracy"] for r in runs]
        assert point["accuracy"] == pytest.approx(statistics.mean(accs))
        assert point["metric_std"] == pytest.approx(statistics.stdev(accs))
        assert point["peak_memory_bytes"] == round(statistics.mean(
            r["peak_memory_bytes"] for r in runs))
        assert all(t in {p["number"] for p in front} for t in point["tied_with"])
        assert point["resolution"]["trainable_params"] == 0
        assert point["resolution"]["accuracy"] > 0  # 24 dev examples
    table = _cli("front", "--study", "conf", "--storage", db)
    assert "Within noise" in table.stdout and "seeds" in table.stdout
    assert not [r for r in rows if r["number"] not in by_number]

    # confirming again with as many seeds runs nothing; a wider confirmation only the rest
    again = _cli("confirm", "--study", "conf", "--seeds", "2", "--storage", db)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "repeat of trial" not in again.stdout
    assert len(_json("trials", "--study", "conf", "--storage", db)) == len(rows)


def _wait_for_repeats(db, study, n, proc, timeout=600):
    from autopeft.store import Store

    end = time.time() + timeout
    while time.time() < end:
        assert proc.poll() is None, "confirmation ended before it could be killed"
        done = [t for t in Store(db).trials(study)
                if "confirms" in (t.extra or {}) and t.status != "interrupted"]
        if len(done) >= n:
            return
        time.sleep(0.5)
    raise AssertionError("no repeat finished in time")


def test_confirmation_killed_midway_resumes_only_the_missing_seeds(bert_dir, tmp_path):
    db = f"sqlite:///{tmp_path}/k.db"
    run = _cli(*_search_args(bert_dir, db, "killed", 2))
    assert run.returncode == 0, run.stderr[-3000:]
    front = [p["number"] for p in _json("front", "--study", "killed", "--storage", db)]
    proc = subprocess.Popen([sys.executable, "-m", "autopeft.cli.main", "confirm", "--study",
                             "killed", "--seeds", "3", "--storage", db],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        _wait_for_repeats(db, "killed", 1, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        try:  # the local Ray the driver started dies with its session
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = {r["number"]: r for r in _repeats(_json("trials", "--study", "killed",
                                                     "--storage", db))}
    done_before = {(r["extra"]["confirms"], r["extra"]["seed"]) for r in before.values()
                   if r["status"] != "interrupted"}
    assert done_before
    assert len(done_before) < 3 * len(front)  # killed midway

    resumed = _cli("confirm", "--study", "killed", "--seeds", "3", "--storage", db)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming study killed" in resumed.stdout
    rows = _json("trials", "--study", "killed", "--storage", db)
    repeats = _repeats(rows)
    ran = Counter((r["extra"]["confirms"], r["extra"]["seed"]) for r in repeats
                  if r["status"] != "interrupted")
    assert all(count == 1 for count in ran.values()), ran  # no seed ran twice
    final_front = [p["number"] for p in _json("front", "--study", "killed", "--storage", db)]
    for number in final_front:
        assert {seed for (o, seed) in ran if o == number} == {4, 5, 6}
    by_number = {r["number"]: r for r in rows}
    for n, r in before.items():  # what ran before the kill is kept, never run again
        assert by_number[n]["status"] == r["status"]
    new = {(r["extra"]["confirms"], r["extra"]["seed"]) for r in repeats
           if r["number"] not in before and r["status"] != "interrupted"}
    assert not new & done_before
    assert len([r for r in rows if r not in repeats]) == 2  # no new configuration ran
