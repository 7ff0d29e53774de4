"""`autopeft submit`: the job spec is checked locally; a real job runs a search on the cluster."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from autopeft.controller.submit import (
    ENTRYPOINT,
    job_logs,
    job_server_url,
    prepare_job,
    submit_search,
    wait_for_job,
)
from autopeft.errors import AutopeftError

SECRET = "s3cret-pw"
PG = f"postgresql+psycopg2://autopeft:{SECRET}@db.example:5432/studies"
ARGS = ["--task", "glue/sst2", "--model", "/models/minilm", "--trials", "4"]


def _cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "autopeft.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_job_spec_keeps_the_storage_out_of_the_command_line(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    spec = prepare_job([*ARGS, "--space", "my space.yaml"], storage=PG, env={"HF_HOME": "/h"})
    argv = shlex.split(spec.entrypoint)
    assert argv[: len(ENTRYPOINT)] == list(ENTRYPOINT)
    assert argv[-2:] == ["--ray-address", "auto"]
    assert "my space.yaml" in argv  # quoted, one argument
    # A study name is chosen here, so the submitter knows what to follow.
    assert spec.study.startswith("glue-sst2-minilm-")
    assert argv[argv.index("--study") + 1] == spec.study
    assert SECRET not in spec.entrypoint and "postgresql" not in spec.entrypoint
    assert SECRET not in json.dumps(spec.metadata)
    env = spec.runtime_env["env_vars"]
    assert env["AUTOPEFT_STORAGE"] == PG and env["HF_HOME"] == "/h"
    assert env["RAY_AUTH_MODE"] == "disabled"
    assert "working_dir" not in spec.runtime_env

    named = prepare_job([*ARGS, "--study", "mine"], storage="sqlite:////srv/a.db")
    assert named.study == "mine" and shlex.split(named.entrypoint).count("--study") == 1


@pytest.mark.parametrize("argv, storage, message", [
    ([*ARGS, "--storage", PG], PG, "belongs to submit"),
    ([*ARGS, "--ray-address=1.2.3.4:6379"], PG, "belongs to submit"),
    (["--model", "m"], PG, "bad search arguments"),
    ([*ARGS, "--trials", "0"], PG, "bad search arguments"),
    ([*ARGS, "--resume"], PG, "--resume needs --study"),
    (ARGS, "sqlite:///relative.db", "absolute SQLite path"),
    (ARGS, "sqlite://", "absolute SQLite path"),
    (ARGS, "nosuchdb://x", "unsupported storage URL"),
])
def test_bad_input_is_refused_before_submitting(argv, storage, message):
    with pytest.raises(AutopeftError, match=message) as err:
        prepare_job(argv, storage=storage)
    assert SECRET not in str(err.value)


def test_storage_and_address_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("AUTOPEFT_STORAGE", raising=False)
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    with pytest.raises(AutopeftError, match="no store for the job"):
        prepare_job(ARGS, storage=None)  # never the local default SQLite file
    with pytest.raises(AutopeftError, match="no job server"):
        job_server_url(None)
    monkeypatch.setenv("AUTOPEFT_STORAGE", PG)
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "head:8265")
    assert prepare_job(ARGS, storage=None).runtime_env["env_vars"]["AUTOPEFT_STORAGE"] == PG
    assert job_server_url(None) == "http://head:8265"


def test_working_dir_and_job_server_address(tmp_path):
    spec = prepare_job(ARGS, storage=PG, working_dir=str(tmp_path))
    assert spec.runtime_env["working_dir"] == str(tmp_path)
    assert ".git" in spec.runtime_env["excludes"]
    with pytest.raises(AutopeftError, match="not a folder"):
        prepare_job(ARGS, storage=PG, working_dir=str(tmp_path / "missing"))
    assert job_server_url("10.0.0.1:8265") == "http://10.0.0.1:8265"
    assert job_server_url("https://head:8265/") == "https://head:8265"
    with pytest.raises(AutopeftError, match="job server"):
        job_server_url("ray://head:10001")


@pytest.mark.slow
@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_submitted_search_runs_on_the_cluster(ray_cluster, tiny_bert_dir, store_url):
    from ray.job_submission import JobSubmissionClient

    # Trust auth ignores the password: it only has to stay out of every printed line.
    storage = make_url(store_url).set(password=SECRET).render_as_string(hide_password=False)
    lines: list[str] = []
    job_id = submit_search(
        ["--task", "glue/sst2", "--model", str(tiny_bert_dir), "--space", "quick",
         "--study", "submitted", "--trials", "2", "--concurrency", "2", "--cpus-per-trial", "1",
         "--epochs", "1", "--max-steps", "3", "--batch-size", "8", "--train-samples", "48",
         "--eval-samples", "24", "--max-length", "64"],
        address=ray_cluster.dashboard, storage=storage, say=lines.append)
    assert job_id in lines[0] and "study submitted" in lines[0]
    assert SECRET not in "\n".join(lines)
    info = JobSubmissionClient(ray_cluster.dashboard).get_job_info(job_id)
    assert SECRET not in info.entrypoint and "--ray-address auto" in info.entrypoint
    assert info.metadata["autopeft_study"] == "submitted"

    status = wait_for_job(ray_cluster.dashboard, job_id, timeout=600, poll=2)
    assert status == "SUCCEEDED", job_logs(ray_cluster.dashboard, job_id)[-4000:]

    studies = _cli("studies", "--storage", store_url, "-f", "json")
    assert studies.returncode == 0, studies.stderr
    (study,) = [s for s in json.loads(studies.stdout) if s["name"] == "submitted"]
    assert study["status"] == "finished" and study["n_trials"] == 2
    rows = json.loads(_cli("trials", "--study", "submitted", "--storage", store_url,
                           "-f", "json").stdout)
    assert {(r["extra"] or {}).get("node_id") for r in rows} <= ray_cluster.node_ids()
    assert "Pareto front of submitted" in job_logs(ray_cluster.dashboard, job_id)
