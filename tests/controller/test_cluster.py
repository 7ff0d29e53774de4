"""`--ray-address` on a real two-node cluster: trials on both nodes, one writer (the driver).

The cluster comes from ``scripts/cluster.sh`` (see conftest.py): two nodes of 1 CPU, so
two concurrent 1-CPU trials can only run on different nodes. Both nodes share this
machine's IP, so placement is told apart by the Ray node id each trial reports.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_data")]

SEARCH = ["--task", "glue/sst2", "--space", "quick", "--epochs", "1", "--max-steps", "3",
          "--batch-size", "8", "--train-samples", "48", "--eval-samples", "24",
          "--max-length", "64", "--seed", "1"]


def _cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "autopeft.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_status_shows_both_nodes_and_a_second_up_is_refused(ray_cluster):
    status = ray_cluster.script("status")
    assert status.returncode == 0, status.stderr
    assert "/2.0 CPU" in status.stdout  # two nodes of one CPU
    assert f"ray address:  {ray_cluster.address}" in status.stdout
    assert f"job server:   {ray_cluster.dashboard}" in status.stdout
    assert len(ray_cluster.node_ids()) == 2

    again = ray_cluster.script("up")
    assert again.returncode == 1 and "already up" in again.stderr
    assert len(ray_cluster.node_ids()) == 2  # the running cluster was left alone


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_search_places_trials_on_both_nodes(ray_cluster, tiny_bert_dir, store_url):
    run = _cli("search", *SEARCH, "--model", str(tiny_bert_dir), "--study", "two-nodes",
               "--trials", "2", "--concurrency", "2", "--cpus-per-trial", "1",
               "--ray-address", ray_cluster.address, "--storage", store_url,
               env=ray_cluster.env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "Pareto front of two-nodes" in run.stdout

    trials = _cli("trials", "--study", "two-nodes", "--storage", store_url, "-f", "json")
    assert trials.returncode == 0, trials.stderr
    rows = json.loads(trials.stdout)
    assert sorted(r["number"] for r in rows) == [0, 1]
    assert all(r["status"] == "completed" for r in rows), rows
    nodes = [(r["extra"] or {}).get("node_id") for r in rows]
    # Two 1-CPU trials at once on two 1-CPU nodes: one on each, both of this cluster.
    assert len(set(nodes)) == 2, rows
    assert set(nodes) == ray_cluster.node_ids()
    assert all((r["extra"] or {}).get("node_ip") for r in rows)

    studies = _cli("studies", "--storage", store_url, "-f", "json")
    (study,) = json.loads(studies.stdout)
    assert study["name"] == "two-nodes" and study["status"] == "finished"
    # The cluster outlives the search: joining did not take it down with the driver.
    assert len(ray_cluster.node_ids()) == 2


def test_a_trial_no_node_can_hold_is_refused_up_front(ray_cluster, tiny_bert_dir, tmp_path):
    """Two CPUs per trial on nodes of one: Ray would keep the trial pending forever."""
    db = f"sqlite:///{tmp_path}/c.db"
    run = _cli("search", *SEARCH, "--model", str(tiny_bert_dir), "--study", "too-big",
               "--trials", "1", "--cpus-per-trial", "2", "--ray-address", ray_cluster.address,
               "--storage", db, env=ray_cluster.env, timeout=300)
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-3000:]
    (line,) = run.stderr.strip().splitlines()
    assert (f"--cpus-per-trial 2 can never be met: the Ray cluster at {ray_cluster.address} "
            "has at most 1 CPUs on one node") in line, line
    from autopeft.store import Store

    assert Store(db).list_studies() == []  # nothing written


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_the_storage_password_stays_out_of_ray_job_list(ray_cluster, tiny_bert_dir, store_url):
    from sqlalchemy.engine import make_url

    # the local server trusts every connection: the password is accepted and ignored
    url = make_url(store_url).set(drivername="postgresql", password="s3cret")
    url = url.render_as_string(hide_password=False)
    run = _cli("search", *SEARCH, "--model", str(tiny_bert_dir), "--study", "hidden-pw",
               "--trials", "1", "--cpus-per-trial", "1", "--ray-address", ray_cluster.address,
               "--storage", url, env=ray_cluster.env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "Pareto front of hidden-pw" in run.stdout
    jobs = subprocess.run(["ray", "job", "list", "--address", ray_cluster.dashboard],
                          env=ray_cluster.env, capture_output=True, text=True, timeout=120)
    assert jobs.returncode == 0, jobs.stderr
    assert "--study hidden-pw" in jobs.stdout  # the search's driver is listed ...
    assert "s3cret" not in jobs.stdout  # ... without the password
