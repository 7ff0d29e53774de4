"""Alembic environment for the autopeft tables.

Run programmatically by :class:`autopeft.store.Store`, which hands over an open connection
in ``config.attributes["connection"]``; ``alembic -c autopeft/store/alembic.ini
-x url=<URL> upgrade head`` works too. Our version table is ``autopeft_alembic_version`` and
autogenerate only looks at ``autopeft_*`` tables, because Optuna's RDB storage keeps its own
tables and ``alembic_version`` in the same database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from autopeft.store.models import TABLE_PREFIX, VERSION_TABLE, Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    # Leave Optuna's tables (and anything else in the database) alone.
    if type_ == "table":
        return bool(name) and name.startswith(TABLE_PREFIX)
    return True


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        compare_type=True,
        # SQLite cannot ALTER most things: later migrations use batch mode there.
        render_as_batch=True,
        **kwargs,
    )


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL: pass -x url=<SQLAlchemy URL>")
    return url


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
