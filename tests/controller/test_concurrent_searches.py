"""Four searches write to one PostgreSQL database at once while readers query it."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SEARCH = ["--task", "glue/sst2", "--space", "quick", "--trials", "2", "--epochs", "1",
          "--max-steps", "2", "--batch-size", "8", "--train-samples", "32",
          "--eval-samples", "16", "--max-length", "64", "--cpus-per-trial", "1",
          "--sampler", "random", "--profile", "none"]


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_four_searches_and_readers_on_one_postgres(ray_cluster, tiny_bert_dir, store_url):
    from autopeft.front import front_trials
    from autopeft.store import Store

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "autopeft.cli.main", "search", *SEARCH, "--model",
             str(tiny_bert_dir), "--study", f"s{i}", "--seed", str(i), "--ray-address",
             ray_cluster.address, "--storage", store_url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ray_cluster.env)
        for i in range(4)
    ]
    reader = Store(store_url)
    reads, deadline = 0, time.time() + 900
    try:
        while any(p.poll() is None for p in procs):
            assert time.time() < deadline, "searches did not finish in time"
            for study in reader.list_studies():  # readers run front/trials meanwhile
                front_trials(reader, study.name)
                reader.trials(study.name)
                reads += 1
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outputs = [p.communicate() for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-1500:] + err[-3000:]
        assert "lock" not in err.lower() and "Traceback" not in err, err[-3000:]
    assert reads > 0
    studies = {s.name: s for s in reader.list_studies()}
    assert sorted(studies) == ["s0", "s1", "s2", "s3"]
    for name, study in studies.items():
        assert study.status == "finished" and study.n_trials == 2, (name, study)
        numbers = [t.number for t in reader.trials(name)]
        assert numbers == [0, 1]  # no row lost, none duplicated
    listing = subprocess.run([sys.executable, "-m", "autopeft.cli.main", "studies",
                              "--storage", store_url, "-f", "json"],
                             capture_output=True, text=True, timeout=120)
    assert len(json.loads(listing.stdout)) == 4
