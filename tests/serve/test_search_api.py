"""Real searches started and stopped through the API (tiny BERT, local Ray, SQLite)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from autopeft.serve.app import create_app
from autopeft.serve.config import ServeConfig

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_data")]
TOKEN = "t0ken"


def _until(predicate, what: str, timeout: float = 600.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(1.0)
    pytest.fail(f"timed out waiting for {what}", pytrace=False)


def _status(api, name):
    got = api.get(f"/v1/studies/{name}")
    return got.json() if got.status_code == 200 else None


def test_a_search_started_by_the_api_finishes_and_another_is_stopped(tmp_path, monkeypatch):
    from autopeft.store import Store
    from autopeft.testing import tiny_model_dir

    monkeypatch.setenv("AUTOPEFT_HOME", str(tmp_path / "home"))  # the searches' too
    model = tiny_model_dir("bert", tmp_path / "bert")
    store = Store(f"sqlite:///{tmp_path / 'serve.db'}")
    api = TestClient(create_app(ServeConfig(storage=store.url, token=TOKEN,
                                            log_dir=str(tmp_path / "logs")), store=store))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    tiny = {"task": "glue/sst2", "model": str(model), "space": "quick", "epochs": 1,
            "batch_size": 8, "train_samples": 48, "eval_samples": 24, "max_length": 64,
            "seed": 1}

    started = api.post("/v1/searches", json={**tiny, "study": "quick", "trials": 2,
                                             "max_steps": 3}, headers=auth)
    assert started.status_code == 202, started.text
    _until(lambda: api.get("/v1/searches/quick").json()["state"] == "ended", "the search")
    log = api.get("/v1/searches/quick").json()
    assert log["returncode"] == 0, log["log_tail"]
    study = _status(api, "quick")
    assert study["status"] == "finished" and study["n_trials"] == 2
    assert len(api.get("/v1/studies/quick/front").json()) >= 1
    assert "Pareto front of quick" in log["log_tail"]

    started = api.post("/v1/searches", json={**tiny, "study": "long", "trials": 50,
                                             "max_steps": 40}, headers=auth)
    assert started.status_code == 202, started.text
    _until(lambda: (_status(api, "long") or {}).get("n_trials", 0) >= 1,
           "the first trial of the long search")
    assert _status(api, "long")["status"] == "running"
    stopped = api.delete("/v1/searches/long", headers=auth)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {"study": "long", "status": "interrupted"}
    study = _status(api, "long")
    assert study["status"] == "interrupted" and 1 <= study["n_trials"] < 50
    run = api.get("/v1/searches/long").json()
    assert run["state"] == "ended", run
    # 130 once `autopeft search` ends on SIGINT itself; the study is interrupted either way
    print(f"stopped search exited {run['returncode']}; its last lines:\n"
          + "\n".join(api.get("/v1/searches/long").json()["log_tail"].splitlines()[-5:]))
    store.close()
