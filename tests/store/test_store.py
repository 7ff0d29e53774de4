"""Store round trips on SQLite and PostgreSQL, error handling and password redaction."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import make_url

from autopeft.errors import AutopeftError
from autopeft.store import TRIAL_STATUSES, Store, StudyRecord, TrialRecord
from autopeft.store.models import StudyRow
from autopeft.store.url import redact, validate_url

OBJECTIVES = [("accuracy", "maximize"), ("trainable_params", "minimize")]
SECRET = "s3cret"


@pytest.fixture
def store(store_url):
    with Store(store_url) as s:
        yield s


def make_study(store: Store, name: str = "rte-lora", objectives=OBJECTIVES) -> StudyRecord:
    return store.create_study(
        name,
        task="rte",
        model="minilm",
        space_name="default",
        space={"methods": {"lora": {"r": [4, 8]}}, "lr": [1e-4, 1e-2]},
        budget={"epochs": 3.0, "trials": 10, "time_budget": None},
        hardware={"name": "cpu", "memory_bytes": 2**34},
        settings={"sampler": "tpe", "seed": 0, "concurrency": 2, "weird": float("nan")},
        objectives=objectives,
    )


def add(store: Store, number: int, status: str = "completed", study: str = "rte-lora", **kw):
    kw.setdefault("primary_metric", 0.5 + number / 100)
    return store.add_trial(
        study,
        number=number,
        method="lora",
        params={"r": 8},
        learning_rate=1e-3,
        status=status,
        **kw,
    )


def test_study_and_trial_round_trip(store, store_url):
    created = make_study(store)
    assert created.created_at.tzinfo is not None and created.status == "running"
    assert created.settings["weird"] is None  # NaN cannot go into JSON
    assert store.get_study("rte-lora") == created
    assert created.objectives == (("accuracy", "maximize"), ("trainable_params", "minimize"))
    assert created.primary == "accuracy" and created.method_space_name == "default"

    started = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    full = dict(
        reason=None,
        primary_metric=0.75,
        metrics={"accuracy": 0.75, "f1": float("inf")},
        trainable_params=7_000_000_000,
        total_params=70_000_000_000,
        peak_memory_bytes=45 * 2**30,
        memory_kind="cuda_max_allocated",
        train_seconds=12.5,
        eval_seconds=1.25,
        examples_per_second=80.0,
        steps=40,
        unparseable_predictions=3,
        eval_examples=277,
        started_at=started,
        finished_at=started + timedelta(seconds=14),
        extra={"log": [1, 2]},
    )
    add(store, 2, status="oom", primary_metric=None, reason="CUDA out of memory")
    rec = add(store, 1, **full)
    assert isinstance(rec, TrialRecord) and rec.metrics == {"accuracy": 0.75, "f1": None}

    # A second Store on the same URL sees everything, with UTC datetimes.
    with Store(store_url) as other:
        got = other.trials("rte-lora")
        assert [t.number for t in got] == [1, 2]
        assert got[0] == rec
        assert got[0].started_at == started and got[0].started_at.utcoffset() == timedelta(0)
        assert got[0].trainable_params == 7_000_000_000 and got[0].peak_memory_bytes == 45 * 2**30
        assert got[0].trainable_fraction == pytest.approx(0.1)
        assert (got[0].unparseable_predictions, got[0].eval_examples) == (3, 277)
        assert got[1].status == "oom" and got[1].reason == "CUDA out of memory"
        assert got[1].unparseable_predictions is None  # never evaluated: not recorded
        assert [t.number for t in other.trials("rte-lora", status="oom")] == [2]
        assert other.next_trial_number("rte-lora") == 3
        assert other.get_study("rte-lora") == created


def test_duplicate_study_name(store):
    make_study(store)
    with pytest.raises(AutopeftError, match="already exists"):
        make_study(store)
    assert [s.name for s in store.list_studies()] == ["rte-lora"]


def test_bad_status_or_number_writes_nothing(store):
    make_study(store)
    with pytest.raises(AutopeftError, match="unknown trial status 'crashed'"):
        add(store, 0, status="crashed")
    assert store.trials("rte-lora") == []
    add(store, 0, primary_metric=0.6)
    with pytest.raises(AutopeftError, match="trial number 0 already exists"):
        add(store, 0, primary_metric=0.9)
    assert [t.primary_metric for t in store.trials("rte-lora")] == [0.6]
    with pytest.raises(AutopeftError, match="unknown study status"):
        store.set_study_status("rte-lora", "done")
    with pytest.raises(AutopeftError, match="unknown trial status"):
        store.trials("rte-lora", status="nope")
    assert set(TRIAL_STATUSES) >= {"completed", "oom", "infeasible", "not_applicable"}


def test_write_transaction_rolls_back(store):
    make_study(store, "kept")
    with pytest.raises(RuntimeError), store._tx() as session:
        session.add(
            StudyRow(
                name="half",
                task="t",
                model="m",
                method_space_name="s",
                space={},
                budget={},
                hardware={},
                settings={},
                objectives=[["a", "maximize"]],
            )
        )
        session.flush()
        raise RuntimeError("boom")
    assert store.get_study("half") is None and store.get_study("kept") is not None


def test_unknown_study(store):
    with pytest.raises(AutopeftError, match=r"no study named 'nope' in .*autopeft studies"):
        store.require_study("nope")
    assert store.get_study("nope") is None
    for call in (
        lambda: add(store, 0, study="nope"),
        lambda: store.trials("nope"),
        lambda: store.set_pareto("nope", []),
    ):
        with pytest.raises(AutopeftError, match="no study named 'nope'"):
            call()


def test_set_pareto(store):
    make_study(store)
    for n in range(4):
        add(store, n)
    store.set_pareto("rte-lora", [0, 2])
    assert [t.number for t in store.trials("rte-lora") if t.is_pareto] == [0, 2]
    store.set_pareto("rte-lora", iter([3]))
    assert [t.number for t in store.trials("rte-lora") if t.is_pareto] == [3]
    with pytest.raises(AutopeftError, match=r"no trials numbered \[9\]"):
        store.set_pareto("rte-lora", [1, 9])
    assert [t.number for t in store.trials("rte-lora") if t.is_pareto] == [3]
    store.set_pareto("rte-lora", [])
    assert not any(t.is_pareto for t in store.trials("rte-lora"))


def test_list_studies_and_status(store):
    make_study(store, "a")
    make_study(store, "b", objectives=[("loss", "min"), ("peak_memory", "minimize")])
    make_study(store, "empty")
    for n, (status, m) in enumerate(
        [("completed", 0.7), ("completed", 0.9), ("failed", None), ("infeasible", None)]
    ):
        add(store, n, status=status, study="a", primary_metric=m)
    add(store, 0, study="b", primary_metric=2.0)
    add(store, 1, study="b", primary_metric=1.5)
    add(store, 2, study="b", status="diverged", primary_metric=0.1)  # not completed: ignored
    store.set_study_status("a", "finished", finished=True)
    by_name = {s.name: s for s in store.list_studies()}
    assert list(by_name) == ["a", "b", "empty"]
    a, b, empty = by_name["a"], by_name["b"], by_name["empty"]
    assert (a.n_trials, a.n_completed, a.best_primary) == (4, 2, 0.9)
    assert (b.n_trials, b.n_completed, b.best_primary) == (3, 2, 1.5)
    assert (empty.n_trials, empty.n_completed, empty.best_primary) == (0, 0, None)
    assert a.status == "finished" and a.finished_at is not None and b.finished_at is None
    assert b.objectives[0] == ("loss", "minimize")
    store.delete_study("a")
    assert store.get_study("a") is None and len(store.list_studies()) == 2


def test_next_trial_number_and_bad_objectives(store):
    make_study(store)
    assert store.next_trial_number("rte-lora") == 0
    add(store, 5)
    assert store.next_trial_number("rte-lora") == 6
    with pytest.raises(AutopeftError, match="direction"):
        make_study(store, "x", objectives=[("accuracy", "up")])
    with pytest.raises(AutopeftError, match="distinct"):
        make_study(store, "y", objectives=[])
    assert store.get_study("x") is None and store.get_study("y") is None


def test_sqlite_file_settings(tmp_path):
    path = tmp_path / "new" / "folder" / "a.db"
    with Store(f"sqlite:///{path}") as store:
        make_study(store)
    assert path.is_file()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_url_from_environment(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("AUTOPEFT_STORAGE", url)
    with Store() as store:
        assert store.url == url


# -- URLs and redaction ------------------------------------------------------------------


def test_redact():
    url = f"postgresql+psycopg2://alice:{SECRET}@db.example:5432/autopeft"
    assert redact(url) == "postgresql+psycopg2://alice:***@db.example:5432/autopeft"
    assert redact(f"alice:{SECRET}@nowhere") == "<unparseable url>"
    assert redact(f"postgresql://a:{SECRET}@h:port/db") == "<unparseable url>"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"alice:{SECRET}@host/db", "bad storage URL '<unparseable url>'"),
        (f"nosuchdb://a:{SECRET}@h/db", "unknown database or driver 'nosuchdb'"),
        (f"postgresql+pg8000://a:{SECRET}@h/db", "needs pg8000, which is not installed"),
        (f"postgresql+asyncpg://a:{SECRET}@h/db", "asyncio driver"),
    ],
)
def test_validate_url_errors(url, message):
    for call in (validate_url, Store):
        with pytest.raises(AutopeftError, match=message) as info:
            call(url)
        assert SECRET not in str(info.value)


def test_unreachable_server_fails_fast():
    start = time.monotonic()
    with pytest.raises(AutopeftError, match="cannot open storage") as info:
        Store(f"postgresql+psycopg2://postgres:{SECRET}@127.0.0.1:1/test")
    assert time.monotonic() - start < 10
    assert SECRET not in str(info.value) and "postgres:***@127.0.0.1:1" in str(info.value)


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_password_never_shown(store_url):
    # The local server uses trust auth, so any password connects.
    url = make_url(store_url).set(password=SECRET).render_as_string(hide_password=False)
    with Store(url) as store:
        assert SECRET not in store.safe_url + repr(store) + str(store)
        assert store.url == url
        with pytest.raises(AutopeftError) as info:
            store.require_study("nope")
        assert SECRET not in str(info.value) and "***" in str(info.value)
    missing = make_url(url).set(database="autopeft_no_such_db").render_as_string(False)
    with pytest.raises(AutopeftError, match="does not exist.*createdb autopeft_no_such_db") as info:
        Store(missing)
    assert SECRET not in str(info.value)


def test_concurrent_writers(store_url):
    """Two Stores writing from two threads at once: no 'database is locked', no lost rows."""
    with Store(store_url) as first, Store(store_url) as second:
        make_study(first)
        errors: list[BaseException] = []

        def write(store: Store, numbers: range) -> None:
            try:
                for n in numbers:
                    add(store, n)
                    store.set_pareto("rte-lora", [n])
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [
            threading.Thread(target=write, args=(s, r))
            for s, r in ((first, range(0, 40, 2)), (second, range(1, 40, 2)))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert [t.number for t in first.trials("rte-lora")] == list(range(40))
        assert sum(t.is_pareto for t in second.trials("rte-lora")) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["postgresql", "postgresql+psycopg2", "postgresql+psycopg"])
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_readme_postgresql_url_and_both_drivers_work(store_url, driver):
    """README's plain postgresql:// (psycopg 3 under SQLAlchemy 2.1) and the explicit
    psycopg2 form both run a study's whole store: our tables and Optuna's."""
    import optuna

    url = make_url(store_url).set(drivername=driver).render_as_string(hide_password=False)
    with Store(url) as store:
        store.create_study("pg", task="glue/sst2", model="m", space_name="quick", space={},
                           budget={}, hardware={}, settings={},
                           objectives=[("accuracy", "maximize")])
        store.add_trial("pg", number=0, method="lora", params={"r": 8}, learning_rate=1e-3,
                        status="completed", primary_metric=0.75)
        study = optuna.create_study(storage=store.optuna_storage(), study_name="o",
                                    load_if_exists=True)
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        assert [t.primary_metric for t in store.trials("pg")] == [0.75]
        assert len(study.trials) == 2
    with Store(url) as again:
        driver_used = again._engine.dialect.driver
    assert driver_used == ("psycopg" if driver == "postgresql" else driver.split("+")[1])


@pytest.mark.postgres
def test_readme_url_on_the_local_server_test_database():
    """The exact form README shows, against this machine's server and its `test` database."""
    if os.environ.get("AUTOPEFT_SKIP_POSTGRES") == "1":
        pytest.skip("AUTOPEFT_SKIP_POSTGRES=1")
    with Store("postgresql://postgres@127.0.0.1:5432/test") as store:
        assert isinstance(store.list_studies(), list)


def test_a_study_keeps_why_it_failed_until_it_runs_again(store_url):
    with Store(store_url) as store:
        store.create_study("s", task="glue/sst2", model="m", space_name="quick", space={},
                           budget={}, hardware={}, settings={"seed": 1},
                           objectives=[("accuracy", "maximize")])
        assert store.get_study("s").status_reason is None
        store.set_study_status("s", "failed", finished=True,
                               reason="search stopped: disk\nfull")
        study = store.get_study("s")
        assert (study.status, study.status_reason) == ("failed", "search stopped: disk full")
        assert study.settings["seed"] == 1 and study.finished_at is not None
        assert store.list_studies()[0].status_reason == "search stopped: disk full"
        store.update_study_settings("s", {"controller_pid": 1}, status="running")
        assert store.get_study("s").status_reason is None  # resumed: the old reason is gone
        store.set_study_status("s", "finished", finished=True)
        assert store.get_study("s").status_reason is None
