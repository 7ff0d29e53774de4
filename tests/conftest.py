"""Shared fixtures: ``store_url`` runs a test once on SQLite and once on PostgreSQL.

The PostgreSQL case gets a freshly created database ``autopeft_test_<random>`` that is
dropped afterwards, so tests never see each other's rows (or Optuna's tables). If the server
is unreachable the PostgreSQL case FAILS; set ``AUTOPEFT_SKIP_POSTGRES=1`` to skip it instead.
The server is ``$AUTOPEFT_TEST_POSTGRES_URL`` (default: the local trust-auth server).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "AUTOPEFT_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def _postgres_database() -> Iterator[str]:
    """Create a fresh database; yield its URL; drop it (terminating leftover sessions)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.pool import NullPool

    from autopeft.store.url import redact

    admin = create_engine(
        POSTGRES_ADMIN_URL,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )
    name = f"autopeft_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OperationalError as exc:
        admin.dispose()
        reason = str(exc.orig).strip().splitlines()[0]
        pytest.fail(
            f"PostgreSQL at {redact(POSTGRES_ADMIN_URL)} is unreachable ({reason}); "
            "start it or set AUTOPEFT_SKIP_POSTGRES=1",
            pytrace=False,
        )
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'autopeft.db'}"
        return
    if os.environ.get("AUTOPEFT_SKIP_POSTGRES") == "1":
        pytest.skip("AUTOPEFT_SKIP_POSTGRES=1")
    yield from _postgres_database()


@pytest.fixture(scope="session")
def shared_dir():
    """``../shared`` (or ``$AUTOPEFT_SHARED``): real data and MiniLM; required, never skipped."""
    from autopeft.paths import find_shared_dir

    shared = find_shared_dir()
    if shared is None:
        pytest.fail("../shared not found beside the checkout; set AUTOPEFT_SHARED", pytrace=False)
    return shared


@pytest.fixture(scope="session")
def shared_data(shared_dir):
    return shared_dir / "data"


@pytest.fixture(scope="session")
def minilm_dir(shared_dir):
    return str(shared_dir / "models" / "all-MiniLM-L6-v2")


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory):
    """Every test (and the CLI processes it starts) uses a fresh AUTOPEFT_HOME: the default
    SQLite store, saved adapters and Ray's trial folders never touch the user's own."""
    old = os.environ.get("AUTOPEFT_HOME")
    os.environ["AUTOPEFT_HOME"] = str(tmp_path_factory.mktemp("autopeft-home"))
    yield
    if old is None:
        os.environ.pop("AUTOPEFT_HOME", None)
    else:
        os.environ["AUTOPEFT_HOME"] = old
