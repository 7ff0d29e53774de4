"""Alembic migrations: idempotent upgrades, our own version table, Optuna side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

import autopeft.store
from autopeft.store import Store, alembic_config
from autopeft.store.models import VERSION_TABLE, Base

OURS = {"autopeft_studies", "autopeft_trials", VERSION_TABLE}
HEAD = "0002"


def _study(store: Store, name: str) -> None:
    store.create_study(
        name,
        task="rte",
        model="m",
        space_name="s",
        space={},
        budget={},
        hardware={},
        settings={},
        objectives=[("accuracy", "maximize")],
    )


def _tables_and_versions(url: str) -> tuple[set[str], list[str]]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        versions = [r[0] for r in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    engine.dispose()
    return tables, versions


def _upgrade(url: str, revision: str = "head") -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    engine.dispose()


def test_migrations_ship_with_the_package():
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD]
    assert Path(script.dir).parent == Path(autopeft.store.__file__).parent


def test_upgrade_is_idempotent_and_uses_own_version_table(store_url):
    with Store(store_url) as store:
        _study(store, "kept")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    for _ in range(2):  # explicit upgrades on an up-to-date database change nothing
        _upgrade(store_url)
    tables, versions = _tables_and_versions(store_url)
    assert tables == OURS and versions == [head]
    assert "alembic_version" not in tables
    with Store(store_url) as again:
        assert again.require_study("kept").name == "kept"

    # The migrated schema is exactly what the ORM models describe.
    engine = create_engine(store_url, poolclass=NullPool)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        assert compare_metadata(ctx, Base.metadata) == []
    engine.dispose()


def test_downgrade_then_upgrade(store_url):
    Store(store_url).close()
    engine = create_engine(store_url, poolclass=NullPool)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    engine.dispose()
    tables, versions = _tables_and_versions(store_url)
    assert tables == {VERSION_TABLE} and versions == []
    with Store(store_url) as store:
        _study(store, "back")
        assert store.get_study("back") is not None


def test_shipped_alembic_ini(store_url):
    ini = Path(autopeft.store.__file__).parent / "alembic.ini"
    cfg = Config(str(ini))
    cfg.cmd_opts = argparse.Namespace(x=[f"url={store_url}"])
    command.upgrade(cfg, "head")
    assert _tables_and_versions(store_url) == (OURS, [HEAD])


@pytest.mark.parametrize("optuna_first", [False, True], ids=["store-first", "optuna-first"])
def test_optuna_rdb_storage_alongside(store_url, optuna_first):
    def with_optuna() -> None:
        if optuna_first:
            storage = optuna.storages.RDBStorage(store_url)
        else:
            with Store(store_url) as store:
                storage = store.optuna_storage()
            assert isinstance(storage, optuna.storages.RDBStorage)
        study = optuna.create_study(storage=storage, study_name="rte-lora", directions=["maximize"])
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        storage.remove_session()
        storage.engine.dispose()

    if optuna_first:
        with_optuna()
    with Store(store_url) as store:
        _study(store, "rte-lora")  # same name as Optuna's study: separate tables
        store.add_trial(
            "rte-lora",
            number=0,
            method="lora",
            params={},
            learning_rate=None,
            status="completed",
            primary_metric=0.5,
        )
    if not optuna_first:
        with_optuna()

    with Store(store_url) as store:  # re-opening upgrades nothing and sees our rows
        assert [t.number for t in store.trials("rte-lora")] == [0]
        assert len(optuna.load_study(study_name="rte-lora", storage=store_url).trials) == 2
        _study(store, "second")
    tables, versions = _tables_and_versions(store_url)
    assert OURS <= tables and {"studies", "trials", "alembic_version"} <= tables
    assert versions == [HEAD]


def test_upgrade_from_0001_keeps_every_trial(store_url):
    """A database written by revision 0001 gains the unparseable-prediction columns; its rows
    are kept with NULL there (not recorded), and downgrading drops only those columns."""
    _upgrade(store_url, "0001")
    engine = create_engine(store_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO autopeft_studies (id, name, task, model, method_space_name, space, "
            "budget, hardware, settings, objectives, status, created_at) VALUES (1, 'old', "
            "'rte', 'm', 's', '{}', '{}', '{}', '{}', '[[\"accuracy\", \"maximize\"]]', "
            "'finished', '2026-11-01 10:00:00')"))
        conn.execute(text(
            "INSERT INTO autopeft_trials (study_id, number, method, params, status, "
            "primary_metric, metrics, is_pareto) VALUES (1, 0, 'lora', '{\"r\": 8}', "
            "'completed', 0.5, '{\"accuracy\": 0.5}', true)"))
    engine.dispose()

    with Store(store_url) as store:  # opening upgrades to head
        (old,) = store.trials("old")
        assert (old.status, old.primary_metric, old.params, old.is_pareto) == (
            "completed", 0.5, {"r": 8}, True)
        assert old.unparseable_predictions is None and old.eval_examples is None
        new = store.add_trial("old", number=1, method="lora", params={}, learning_rate=None,
                              status="completed", unparseable_predictions=3, eval_examples=40)
        assert (new.unparseable_predictions, new.eval_examples) == (3, 40)
    assert _tables_and_versions(store_url)[1] == [HEAD]

    engine = create_engine(store_url, poolclass=NullPool)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("autopeft_trials")}
        numbers = [r[0] for r in conn.execute(text(
            "SELECT number FROM autopeft_trials ORDER BY number"))]
    engine.dispose()
    assert "unparseable_predictions" not in columns and "eval_examples" not in columns
    assert numbers == [0, 1]
