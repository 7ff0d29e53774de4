"""A search that does not finish: Ctrl-C, a store that stops taking writes. Each leaves the
study marked (when the store still can be written), its running trial queued again, one
line on stderr, and a resume that completes the budget."""

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


def _args(model, db, study, trials, *extra):
    return ["search", "--task", "glue/sst2", "--model", str(model), "--space", "quick",
            "--trials", str(trials), "--epochs", "1", "--max-steps", "3", "--batch-size", "8",
            "--train-samples", "48", "--eval-samples", "24", "--max-length", "64",
            "--study", study, "--storage", db, "--sampler", "random", "--seed", "3", *extra]


def _trials(db, study):
    out = _cli("trials", "--study", study, "--storage", db, "-f", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _study(db, name):
    out = _cli("studies", "--storage", db, "-f", "json")
    assert out.returncode == 0, out.stderr
    (study,) = [s for s in json.loads(out.stdout) if s["name"] == name]
    return study


def _running_optuna_trial(db, study, proc, timeout=400):
    import optuna

    end = time.time() + timeout
    while time.time() < end:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        try:
            trials = optuna.load_study(study_name=f"autopeft:{study}", storage=db).trials
        except KeyError:  # not created yet
            trials = []
        running = [t for t in trials if t.state.name == "RUNNING"]
        if running:
            return running[0]
        time.sleep(0.5)
    raise AssertionError("no trial started in time")


def test_ctrl_c_interrupts_and_the_resume_runs_the_trial_again(bert_dir, tmp_path):
    import optuna

    db = f"sqlite:///{tmp_path}/c.db"
    # trials that would train for hours, cut by a short trial timeout once resumed
    args = _args(bert_dir, db, "ctrlc", 2, "--trial-timeout", "2")
    args[args.index("--max-steps") + 1] = "100000"
    args[args.index("--epochs") + 1] = "1000"
    proc = subprocess.Popen([sys.executable, "-m", "autopeft.cli.main", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        running = _running_optuna_trial(db, "ctrlc", proc)
        os.kill(proc.pid, signal.SIGINT)  # what Ctrl-C (or `autopeft serve`'s stop) sends
        out, err = proc.communicate(timeout=300)
    finally:
        try:  # the local Ray the driver started dies with its session
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == 130, (proc.returncode, out[-2000:], err[-3000:])
    assert err.strip().splitlines()[-1] == "autopeft search: interrupted", err[-3000:]
    assert "Traceback" not in err and "Pareto front" not in out, (out, err)
    assert "interrupted: study ctrlc marked interrupted" in out, out
    study = _study(db, "ctrlc")
    assert study["status"] == "interrupted", study
    assert study["reason"] == "interrupted by Ctrl-C (SIGINT)", study
    rows = {r["number"]: r for r in _trials(db, "ctrlc")}
    assert rows[running.number]["status"] == "interrupted", rows
    assert "queued to run again" in rows[running.number]["reason"], rows
    states = {t.number: t.state.name
              for t in optuna.load_study(study_name="autopeft:ctrlc", storage=db).trials}
    assert "RUNNING" not in states.values(), states
    waiting = [t for t in optuna.load_study(study_name="autopeft:ctrlc", storage=db).trials
               if t.state.name == "WAITING"]
    assert len(waiting) == 1, states  # its configuration, queued (checked on resume below)

    resumed = _cli(*args[:args.index("--study")], "--study", "ctrlc", "--storage", db,
                   "--resume", *args[args.index("--sampler"):])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _trials(db, "ctrlc")
    again = [r for r in after if r["number"] > running.number and r["status"] != "interrupted"
             and r["params"] == rows[running.number]["params"]
             and r["method"] == rows[running.number]["method"]]
    assert again, after  # the interrupted configuration ran on resume
    assert len([r for r in after if r["status"] != "interrupted"]) == 2, after
    assert _study(db, "ctrlc")["status"] == "finished"


@pytest.mark.parametrize("writes", ["trials", "all", "front"])
def test_a_full_store_mid_search_is_one_line_and_resumable(bert_dir, tmp_path, writes):
    import optuna

    db = f"sqlite:///{tmp_path}/d.db"
    args = _args(bert_dir, db, "full", 3, "--concurrency", "2", "--cpus-per-trial", "1")
    run = _cli(*args, env=fault_env(tmp_path / "hook", {}, store_full_after=1,
                                    store_full_for=writes))
    assert run.returncode == 2, (run.returncode, run.stdout[-2000:], run.stderr[-3000:])
    assert "Traceback" not in run.stderr, run.stderr[-5000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("autopeft search: error: search stopped: storage "), last
    assert "refused a write: database or disk is full" in last
    study = _study(db, "full")
    rows = _trials(db, "full")
    if writes == "all":
        assert "could not be marked failed" in last
        assert study["status"] == "running"
    else:  # the study itself could still be written
        assert "marked failed" in last
        assert study["status"] == "failed" and "database or disk is full" in study["reason"]
    if writes == "front":  # trial rows could still be written: the crash closed Optuna's
        states = [t.state.name for t in
                  optuna.load_study(study_name="autopeft:full", storage=db).trials]
        assert "RUNNING" not in states, states  # running ones failed and queued again
        assert all("queued to run again" in r["reason"] for r in rows
                   if r["status"] == "interrupted"), rows
        # (besides the queue --cover-methods put first, which a resume runs as it is)
        assert states.count("WAITING") >= len([r for r in rows if r["status"] == "interrupted"])
    else:
        assert len(rows) == 1

    resumed = _cli(*args[:args.index("--study")], "--study", "full", "--storage", db,
                   "--resume", *args[args.index("--sampler"):])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _trials(db, "full")
    numbers = [r["number"] for r in after]
    assert len(numbers) == len(set(numbers)), after
    assert len([r for r in after if r["status"] != "interrupted"]) == 3, after
    assert _study(db, "full")["status"] == "finished"
