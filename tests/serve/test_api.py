"""The JSON API of ``autopeft serve`` through FastAPI's TestClient, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import signal
import sys
import time
import zipfile

import pytest
from fastapi.testclient import TestClient

from autopeft.cli.main import main as cli
from autopeft.errors import AutopeftError
from autopeft.serve import runs
from autopeft.serve.app import create_app
from autopeft.serve.config import ServeConfig, load_token

TOKEN = "s3cret-token-value"
SEARCH = {"task": "glue/sst2", "model": "some/model", "trials": 2}


def client(store, **config) -> TestClient:
    return TestClient(create_app(ServeConfig(storage=store.url, **config), store=store))


def cli_json(capsys, *argv) -> object:
    assert cli(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_studies_front_and_trials_are_the_cli_objects(store, tmp_path, capsys, make_study):
    make_study(store, "s1", artifacts=tmp_path / "art", trials=12)
    make_study(store, "s2", trials=3, status="running", seed=1)
    api = client(store)
    url = ["--storage", store.url]

    assert api.get("/v1/studies").json() == cli_json(capsys, "studies", "-f", "json", *url)
    one = api.get("/v1/studies/s1").json()
    (listed,) = [s for s in cli_json(capsys, "studies", "-f", "json", *url) if s["name"] == "s1"]
    assert {k: one[k] for k in listed} == listed
    assert one["budget"] == {"trials": 12} and one["search"] is None

    front = api.get("/v1/studies/s1/front")
    assert front.headers["content-type"] == "application/json"
    assert front.json() == cli_json(capsys, "front", "--study", "s1", "-f", "json", *url)
    assert len(front.json()) >= 1
    assert cli(["front", "--study", "s1", "-f", "csv", *url]) == 0
    cli_csv = capsys.readouterr().out
    for path in ("/v1/studies/s1/front?format=csv", "/v1/studies/s1/front.csv"):
        got = api.get(path)
        assert got.headers["content-type"].startswith("text/csv")
        assert "attachment" in got.headers["content-disposition"]
        assert got.text + "\n" == cli_csv  # the CLI prints one newline more
    assert len(list(csv.DictReader(io.StringIO(got.text)))) == len(front.json())

    page = api.get("/v1/studies/s1/trials", params={"limit": 1000}).json()
    assert page["total"] == 12 and page["next_offset"] is None
    assert page["items"] == cli_json(capsys, "trials", "--study", "s1", "-f", "json", *url)
    failed = api.get("/v1/studies/s1/trials", params={"status": "failed"}).json()
    assert failed["items"] == cli_json(capsys, "trials", "--study", "s1", "--status", "failed",
                                       "-f", "json", *url)
    assert api.get("/healthz").json()["status"] == "ok"


def test_paging_over_ten_thousand_trials(store, bulk_study):
    bulk_study(store, "big", 10_000)
    api = client(store)
    seen, offset, pages = [], 0, 0
    while offset is not None:
        page = api.get("/v1/studies/big/trials", params={"limit": 999, "offset": offset})
        assert page.status_code == 200
        body = page.json()
        assert body["total"] == 10_000 and page.headers["x-total-count"] == "10000"
        seen += [t["number"] for t in body["items"]]
        offset, pages = body["next_offset"], pages + 1
    assert seen == list(range(10_000)) and pages == 11
    seen, after = [], None  # the same with the cursor
    while True:
        body = api.get("/v1/studies/big/trials", params={
            "limit": 999, **({} if after is None else {"after": after})}).json()
        assert body["total"] == 10_000
        seen += [t["number"] for t in body["items"]]
        if body["next_after"] is None:
            break
        after = body["next_after"]
    assert seen == list(range(10_000))

    everything = store.trials("big")
    for query in ({"status": "completed"}, {"method": "ia3"},
                  {"status": "oom", "method": "lora"}):
        want = [t.number for t in everything
                if all(getattr(t, k) == v for k, v in query.items())]
        body = api.get("/v1/studies/big/trials", params={**query, "limit": 10_000}).json()
        assert body["total"] == len(want) > 0
        assert [t["number"] for t in body["items"]] == want
    tail = api.get("/v1/studies/big/trials", params={"limit": 10, "offset": 9_995}).json()
    assert [t["number"] for t in tail["items"]] == list(range(9_995, 10_000))
    assert tail["next_offset"] is None and tail["next_after"] is None
    done = api.get("/v1/studies/big/trials", params={"status": "completed", "limit": 5,
                                                      "after": 5000}).json()
    want = [t.number for t in everything if t.status == "completed" and t.number > 5000][:5]
    assert [t["number"] for t in done["items"]] == want and done["next_after"] == want[-1]
    past = api.get("/v1/studies/big/trials", params={"offset": 20_000}).json()
    assert past["items"] == [] and past["total"] == 10_000


@pytest.mark.parametrize("path", [
    "/v1/studies/nope", "/v1/studies/nope/front", "/v1/studies/nope/front.csv",
    "/v1/studies/nope/trials", "/v1/studies/nope/trials/0/adapter", "/v1/searches/nope",
])
def test_unknown_study_is_404_naming_it(store, path):
    got = client(store).get(path)
    assert got.status_code == 404
    assert "nope" in got.json()["detail"]


def test_unknown_trial_and_bad_queries(store, make_study):
    make_study(store, "s", trials=3)
    api = client(store)
    got = api.get("/v1/studies/s/trials/99/adapter")
    assert got.status_code == 404 and "no trial 99" in got.json()["detail"]
    for params, field in (({"status": "bogus"}, "status"), ({"limit": 0}, "limit"),
                          ({"limit": 10_001}, "limit"), ({"offset": -1}, "offset")):
        bad = api.get("/v1/studies/s/trials", params=params)
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["query", field]
        assert field in bad.json()["message"]
    assert api.get("/v1/studies/s/front", params={"format": "xml"}).status_code == 422
    assert client(store).get("/studies/nope").status_code == 404


def test_adapter_zip_holds_the_export_and_only_from_the_artifacts(store, tmp_path, make_study):
    art = tmp_path / "art"
    make_study(store, "s", artifacts=art, trials=5)
    api = client(store)
    got = api.get("/v1/studies/s/trials/1/adapter")
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
        names = set(zf.namelist())
        assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= names
        assert zf.read("adapter_model.safetensors") == bytes([1]) * 64
        assert "trial 1 of study `s`" in zf.read("README.md").decode()

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "adapter_config.json").write_text("{}")
    store.add_trial("s", number=10, method="lora", params={}, learning_rate=None,
                    status="completed", primary_metric=0.6, metrics={"accuracy": 0.6},
                    trainable_params=5, peak_memory_bytes=5,
                    extra={"adapter_path": str(outside)})
    assert api.get("/v1/studies/s/trials/10/adapter").status_code == 403
    # a link inside the artifacts that leads out of them is refused too
    (art / "trial-0" / "leak").symlink_to(outside / "adapter_config.json")
    assert api.get("/v1/studies/s/trials/0/adapter").status_code == 403
    failed = api.get("/v1/studies/s/trials/4/adapter")  # trial 4 failed: nothing to export
    assert failed.status_code == 404 and "failed" in failed.json()["detail"]


# -- auth --------------------------------------------------------------------------------

def test_mutations_need_the_token(store, make_study):
    make_study(store, "s", trials=2)
    api = client(store, token=TOKEN)
    for call in (lambda h: api.post("/v1/searches", json={"trials": 0}, headers=h),
                 lambda h: api.delete("/v1/searches/s", headers=h)):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            refused = call(headers)
            assert refused.status_code == 401, refused.text
            assert refused.headers["www-authenticate"] == "Bearer"
            assert TOKEN not in refused.text
    ok = {"Authorization": f"Bearer {TOKEN}"}
    # past the guard: the body is checked (422), the stop finds nothing running (409)
    assert api.post("/v1/searches", json={"trials": 0}, headers=ok).status_code == 422
    assert api.delete("/v1/searches/s", headers=ok).status_code == 409
    assert api.get("/v1/studies").status_code == 200  # reading needs no token
    assert TOKEN not in api.get("/openapi.json").text


def test_read_only_refuses_mutations(store):
    api = client(store, read_only=True, host="0.0.0.0")
    got = api.post("/v1/searches", json=SEARCH)
    assert got.status_code == 403 and "read-only" in got.json()["detail"]
    assert api.delete("/v1/searches/x").status_code == 403


def test_no_token_is_refused_off_loopback(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("AUTOPEFT_API_TOKEN", raising=False)
    with pytest.raises(AutopeftError, match="without an API token"):
        ServeConfig(host="0.0.0.0")
    ServeConfig(host="0.0.0.0", read_only=True)
    ServeConfig(host="0.0.0.0", token="t")
    ServeConfig(host="::1")
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert cli(["serve", "--host", "0.0.0.0", "--storage", db]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--read-only" in err and "Traceback" not in err
    empty = tmp_path / "token"
    empty.write_text("\n")
    assert cli(["serve", "--token-file", str(empty), "--storage", db]) == 2
    assert "is empty" in capsys.readouterr().err
    empty.write_text("abc\n")
    assert load_token(str(empty)) == "abc"
    monkeypatch.setenv("AUTOPEFT_API_TOKEN", "xyz")
    assert load_token(None) == "xyz"


# -- search requests -----------------------------------------------------------------------

@pytest.mark.parametrize(("body", "field", "words"), [
    ({**SEARCH, "trials": 0}, "trials", "must be positive"),
    ({**SEARCH, "sampler": "grid"}, "sampler", "invalid choice"),
    ({**SEARCH, "study": "a b"}, "study", "bad study name"),
    ({**SEARCH, "resume": True}, "resume", "--resume needs --study"),
    ({**SEARCH, "task": "glue/nope"}, "task", "unknown task"),
    ({**SEARCH, "space": "nope"}, "space", "unknown search space"),
    ({**SEARCH, "epochs": "many"}, "epochs", "valid number"),
    ({**SEARCH, "storage": "sqlite:///x.db"}, "storage", "set by the server"),
    ({**SEARCH, "ray_address": "auto"}, "ray_address", "set by the server"),
    ({**SEARCH, "colour": "red"}, "colour", "not permitted"),
    ({"model": "m"}, "task", "required"),
])
def test_bad_search_bodies_are_422_naming_the_field(store, body, field, words):
    got = client(store).post("/v1/searches", json=body)
    assert got.status_code == 422, got.text
    detail = got.json()["detail"]
    assert any(d["loc"] == ["body", field] for d in detail), detail
    assert words in got.json()["message"] and field in got.json()["message"]
    assert store.list_studies() == []  # nothing written


def _fake_search(monkeypatch, script: str) -> None:
    """Searches run ``script`` (a stand-in for `autopeft search`, which it is given)."""
    monkeypatch.setattr(runs, "SEARCH_COMMAND", (sys.executable, "-c", script))


# Marks its study running (as a search does), then waits; SIGINT marks it interrupted.
_WELL_BEHAVED = """
import os, signal, sys, time
from autopeft.store import Store
store = Store(os.environ["AUTOPEFT_STORAGE"])
name = sys.argv[sys.argv.index("--study") + 1] if "--study" in sys.argv else [
    a.split("=", 1)[1] for a in sys.argv if a.startswith("--study=")][0]
store.update_study_settings(name, {"controller_pid": os.getpid()}, status="running")
print("storage", os.environ["AUTOPEFT_STORAGE"][:5], "args", sys.argv[1:], flush=True)
try:
    time.sleep(600)
except KeyboardInterrupt:
    store.set_study_status(name, "interrupted", finished=True)
    sys.exit(130)
"""


def _wait(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_start_then_stop_a_search_process(store, monkeypatch, make_study):
    make_study(store, "s", trials=2)
    _fake_search(monkeypatch, _WELL_BEHAVED)
    api = client(store)
    started = api.post("/v1/searches", json={**SEARCH, "study": "s", "max_steps": 3})
    assert started.status_code == 202, started.text
    assert started.json()["backend"] == "process" and started.json()["pid"] > 0
    assert _wait(lambda: store.get_study("s").status == "running")
    run = api.get("/v1/searches/s").json()
    assert run["state"] == "running"
    assert _wait(lambda: "args" in api.get("/v1/searches/s").json()["log_tail"])
    tail = api.get("/v1/searches/s").json()["log_tail"]
    # the CLI's arguments, and the storage in the environment, not on the command line
    assert "--max-steps=3" in tail and "--storage" not in tail
    assert f"storage {store.url[:5]} args" in tail
    again = api.post("/v1/searches", json={**SEARCH, "study": "s"})
    assert again.status_code == 409 and "already running" in again.json()["detail"]
    assert api.get("/v1/studies/s").json()["search"]["state"] == "running"

    stopped = api.delete("/v1/searches/s")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {"study": "s", "status": "interrupted"}
    assert api.get("/v1/searches/s").json()["returncode"] == 130
    assert [r["state"] for r in api.get("/v1/searches").json()] == ["ended"]


def test_a_search_that_ignores_sigint_is_ended_and_marked(store, monkeypatch, make_study):
    make_study(store, "s", trials=2)
    stubborn = _WELL_BEHAVED.replace("import os, signal, sys, time",
                                     "import os, signal, sys, time\n"
                                     "signal.signal(signal.SIGINT, signal.SIG_IGN)")
    _fake_search(monkeypatch, stubborn)
    api = TestClient(create_app(ServeConfig(storage=store.url, stop_timeout=1.0), store=store))
    assert api.post("/v1/searches", json={**SEARCH, "study": "s"}).status_code == 202
    assert _wait(lambda: store.get_study("s").status == "running")
    assert _wait(lambda: "args" in api.get("/v1/searches/s").json()["log_tail"])
    stopped = api.delete("/v1/searches/s")
    assert stopped.json()["status"] == "interrupted"  # marked by the server: killed
    assert api.get("/v1/searches/s").json()["returncode"] == -signal.SIGTERM


def test_a_search_that_dies_leaves_its_study_interrupted(store, monkeypatch, make_study):
    make_study(store, "s", trials=2)
    _fake_search(monkeypatch, _WELL_BEHAVED.replace("time.sleep(600)", "os._exit(9)"))
    api = client(store)
    assert api.post("/v1/searches", json={**SEARCH, "study": "s"}).status_code == 202
    assert _wait(lambda: api.get("/v1/searches/s").json()["state"] == "ended")
    assert store.get_study("s").status == "interrupted"
    assert api.delete("/v1/searches/s").status_code == 409  # nothing left to stop


class _FakeJobClient:
    """Ray's JobSubmissionClient at the boundary: records what it is sent."""

    def __init__(self):
        self.jobs: dict[str, dict] = {}

    def submit_job(self, *, entrypoint, runtime_env, metadata):
        job_id = f"raysubmit_{len(self.jobs)}"
        self.jobs[job_id] = {"entrypoint": entrypoint, "env": runtime_env["env_vars"],
                             "status": "RUNNING"}
        return job_id

    def get_job_status(self, job_id):
        return type("S", (), {"value": self.jobs[job_id]["status"]})()

    def stop_job(self, job_id):
        self.jobs[job_id]["status"] = "STOPPED"
        return True

    def get_job_logs(self, job_id):
        return "driver output"


def test_with_a_ray_address_searches_are_ray_jobs(store, tmp_path, monkeypatch, make_study):
    from autopeft.controller import submit

    fake = _FakeJobClient()
    monkeypatch.setattr(submit, "_client", lambda address: fake)
    make_study(store, "s", trials=2, status="interrupted")
    api = TestClient(create_app(ServeConfig(storage=store.url, ray_address="http://head:8265",
                                            stop_timeout=5.0), store=store))
    got = api.post("/v1/searches", json={**SEARCH, "study": "s", "resume": True})
    assert got.status_code == 202, got.text
    assert got.json()["backend"] == "ray-job"
    (job,) = fake.jobs.values()
    assert "--resume" in job["entrypoint"] and "--study=s" in job["entrypoint"]
    assert "sqlite" not in job["entrypoint"] and "postgresql" not in job["entrypoint"]
    assert job["env"]["AUTOPEFT_STORAGE"] == store.url
    assert api.get("/v1/searches/s").json()["log_tail"] == "driver output"
    store.set_study_status("s", "running")  # what the job's driver does when it starts
    stopped = api.delete("/v1/searches/s")
    assert stopped.json() == {"study": "s", "status": "interrupted"}
    assert job["status"] == "STOPPED"
    assert api.get("/v1/searches/s").json()["job_status"] == "STOPPED"


def test_log_tails_never_show_the_storage_password(tmp_path):
    url = "postgresql://me:hunter2@db.example/autopeft"
    log = tmp_path / "s.log"
    log.write_text(f"could not connect to {url}\npassword hunter2 again\n")
    searches = runs.Searches(type("FakeStore", (), {"url": url})(), log_dir=tmp_path)
    run = runs.Run(study="s", backend="process", argv=[], started_at=None, log_path=str(log))
    tail = searches.log_tail(run)
    assert "hunter2" not in tail and "postgresql://me:***@db.example/autopeft" in tail


def test_a_cached_front_follows_new_trials_and_resumes(store, capsys, make_study):
    make_study(store, "s", trials=10)
    api = client(store)
    url = ["--storage", store.url]
    first = api.get("/v1/studies/s/front").json()
    assert api.get("/v1/studies/s/front").json() == first  # from the cache
    # a trial that dominates everything, added to the finished study: a new front
    store.add_trial("s", number=50, method="lora", params={}, learning_rate=None,
                    status="completed", primary_metric=0.99, metrics={"accuracy": 0.99},
                    trainable_params=1, peak_memory_bytes=1)
    second = api.get("/v1/studies/s/front").json()
    assert [r["number"] for r in second] == [50]
    assert second == cli_json(capsys, "front", "--study", "s", "-f", "json", *url)
    store.set_study_status("s", "running")  # resumed: always recomputed
    store.set_pareto("s", [50])
    assert api.get("/v1/studies/s/front").json()[0]["is_pareto"] is True
    assert api.get("/v1/studies/s/front.csv").text + "\n" == (
        cli(["front", "--study", "s", "-f", "csv", *url]) or capsys.readouterr().out)
