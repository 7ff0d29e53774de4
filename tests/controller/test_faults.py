"""Faults inside trials end only that trial; ASHA stops weak trials; kill -9 then resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from autopeft.testing import fault_env, tiny_model_dir

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_data")]


def _cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "autopeft.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_model_dir("bert", tmp_path_factory.mktemp("bert"))


def _search_args(model, db, study, trials, *extra):
    return ["search", "--task", "glue/sst2", "--model", str(model), "--space", "quick",
            "--trials", str(trials), "--epochs", "1", "--max-steps", "3", "--batch-size", "8",
            "--train-samples", "48", "--eval-samples", "24", "--max-length", "64",
            "--study", study, "--storage", db, "--sampler", "random", *extra]


def _trials(db, study):
    out = _cli("trials", "--study", study, "--storage", db, "-f", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_each_fault_ends_only_its_trial(bert_dir, tmp_path):
    db = f"sqlite:///{tmp_path}/f.db"
    run = _cli(*_search_args(bert_dir, db, "faults", 6, "--trial-timeout", "0.3"),
               env=fault_env(tmp_path / "hook", {0: "raise", 1: "oom", 2: "nan", 3: "exit"}))
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {r["number"]: r for r in _trials(db, "faults")}
    assert sorted(rows) == [0, 1, 2, 3, 4, 5]
    assert rows[0]["status"] == "failed" and "injected fault" in rows[0]["reason"]
    trace = rows[0]["extra"]["traceback"]  # the whole traceback, not only its last line
    assert trace.startswith("Traceback") and "in broken" in trace and "injected fault" in trace
    shown = _cli("trials", "--study", "faults", "--storage", db, "--trial", "0")
    assert shown.returncode == 0 and trace.strip().splitlines()[-1] in shown.stdout
    assert rows[1]["status"] == "oom" and "out of memory" in rows[1]["reason"]
    assert rows[2]["status"] == "diverged" and "loss became nan" in rows[2]["reason"]
    assert rows[3]["status"] == "failed" and "Ray worker failed" in rows[3]["reason"]
    # the trial timeout (0.3 s) is shorter than 3 steps plus set-up on these machines
    assert {rows[4]["status"], rows[5]["status"]} <= {"timeout", "completed"}
    assert all(r["method"] for r in rows.values())


def test_asha_stops_at_least_one_trial(bert_dir, tmp_path):
    db = f"sqlite:///{tmp_path}/a.db"
    args = _search_args(bert_dir, db, "asha", 6, "--scheduler", "asha", "--eval-every", "2")
    args[args.index("--max-steps") + 1] = "12"
    args[args.index("--epochs") + 1] = "4"
    run = _cli(*args)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = _trials(db, "asha")
    assert len(rows) == 6
    pruned = [r for r in rows if r["status"] == "pruned"]
    assert pruned, [(r["status"], r["reason"]) for r in rows]
    for r in pruned:
        assert "stopped early by the asha scheduler at step" in r["reason"]
        assert r["accuracy"] is not None
        assert r["train_seconds"] > 0 and r["steps"] > 0  # what it trained is on the row


def _wait_for_rows(db, study, n, proc, timeout=300):
    from autopeft.store import Store

    end = time.time() + timeout
    while time.time() < end:
        assert proc.poll() is None, "search ended before it could be killed"
        try:
            if len(Store(db).trials(study)) >= n:
                return
        except Exception:  # noqa: BLE001 - the study may not exist yet
            pass
        time.sleep(0.5)
    raise AssertionError("no trial finished in time")


def test_kill_9_then_resume_keeps_every_trial(bert_dir, tmp_path):
    db = f"sqlite:///{tmp_path}/k.db"
    args = _search_args(bert_dir, db, "killed", 5, "--concurrency", "2",
                        "--cpus-per-trial", "1")
    proc = subprocess.Popen([sys.executable, "-m", "autopeft.cli.main", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        _wait_for_rows(db, "killed", 2, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        try:  # the local Ray the driver started dies with its session
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = {r["number"]: r for r in _trials(db, "killed")}
    assert len(before) >= 2

    run = _cli(*args[:args.index("--study")], "--study", "killed", "--storage", db,
               "--sampler", "random", "--resume", *args[args.index("--concurrency"):])
    assert run.returncode == 0, run.stderr[-3000:]
    assert "resuming study killed" in run.stdout
    after = _trials(db, "killed")
    numbers = [r["number"] for r in after]
    table = [(r["number"], r["status"], r["method"], r["reason"]) for r in after]
    assert len(numbers) == len(set(numbers)), table  # no duplicate rows
    by_number = {r["number"]: r for r in after}
    for n, r in before.items():  # nothing stored before the kill is lost or changed
        assert by_number[n]["status"] == r["status"], table
    finished = [r for r in after if r["status"] != "interrupted"]
    assert len(finished) == 5, (table, run.stdout[-3000:])  # counted toward --trials, exactly
    interrupted = [r for r in after if r["status"] == "interrupted"]
    for r in interrupted:  # their configurations ran again
        if "configuration was queued" in r["reason"]:
            again = [f for f in finished if f["number"] > r["number"]
                     and f["params"] == r["params"] and f["method"] == r["method"]]
        elif "method was queued" in r["reason"]:  # killed while it was being sampled
            again = [f for f in finished if f["number"] > r["number"]
                     and f["method"] == r["method"]]
        else:  # killed before it had a configuration: nothing to run again
            assert r["method"] == "?" and "nothing is run again" in r["reason"], r
            continue
        assert again, (r, table)
    studies = json.loads(_cli("studies", "--storage", db, "-f", "json").stdout)
    assert [s["status"] for s in studies if s["name"] == "killed"] == ["finished"], studies


def test_time_budget_stores_the_trial_it_cut_short(bert_dir, tmp_path):
    import optuna

    db = f"sqlite:///{tmp_path}/t.db"
    args = _search_args(bert_dir, db, "budget", 20, "--time-budget", "20")
    # trials far longer than the budget (warm workers make short ones fit 20 in 20 s)
    args[args.index("--max-steps") + 1] = "20000"
    args[args.index("--epochs") + 1] = "5000"
    run = _cli(*args)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = _trials(db, "budget")
    study = optuna.load_study(study_name="autopeft:budget", storage=db)
    assert sorted(r["number"] for r in rows) == sorted(t.number for t in study.trials)
    assert not [t.number for t in study.trials if t.state.name == "RUNNING"]
    cut = [r for r in rows if r["status"] == "interrupted"]
    assert cut and all("time budget ran out" in r["reason"] for r in cut), rows
    assert all(r["method"] for r in cut)
