"""Storage URLs: validation, password redaction and the engine a URL opens.

Every message or repr that mentions a storage URL goes through :func:`redact`, so a password
given in ``postgresql://user:secret@host/db`` never reaches a terminal or a log.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from autopeft.errors import AutopeftError

UNPARSEABLE = "<unparseable url>"
EXAMPLES = "sqlite:///path/autopeft.db or postgresql://user@host/db"
# A plain postgresql:// URL means psycopg 3 in SQLAlchemy 2.1; postgresql+psycopg2:// still works.
PG_DRIVERS = "postgresql:// (psycopg 3) or postgresql+psycopg2://"
WRITE = "autopeft_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)


def parse(url: str | URL) -> URL:
    """Parse a SQLAlchemy URL, raising :class:`AutopeftError` (redacted) when malformed."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise AutopeftError(
            f"bad storage URL '{redact(url)}': expected a SQLAlchemy URL such as {EXAMPLES}"
        ) from None


def redact(url: str | URL) -> str:
    """The URL with its password replaced by ``***``.

    A string that does not parse is never echoed back (it might be a password pasted in
    the wrong place): it becomes ``<unparseable url>``.
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # anything unparseable: never leak the raw text
        return UNPARSEABLE


def password_of(url: str | URL) -> str | None:
    """The URL's password, if any (used to scrub it from driver error messages)."""
    try:
        return make_url(url).password
    except Exception:
        return None


def scrub(text: str, url: str | URL) -> str:
    """Remove the URL's password (and the raw URL) from ``text``."""
    secret = password_of(url)
    if isinstance(url, str) and url:
        text = text.replace(url, redact(url))
    if secret:
        text = text.replace(str(secret), "***")
    return text


def validate_url(url: str | URL) -> None:
    """Check that ``url`` is a SQLAlchemy URL with an installed, synchronous driver.

    Raises:
        AutopeftError: malformed URL, unknown dialect, missing DBAPI module or an asyncio
            driver (the store is synchronous).
    """
    parsed = parse(url)
    safe = redact(url)
    if parsed.get_backend_name() == "sqlite" and (parsed.host or parsed.port or
                                                   parsed.username):
        # sqlite://x.db parses with x.db as a host, and the SQLite dialect refuses it with
        # a traceback-worthy ArgumentError: name the missing slash instead.
        where = parsed.host or ""
        raise AutopeftError(
            f"bad SQLite URL '{safe}': the file path follows three slashes, e.g. "
            f"sqlite:///{where or 'autopeft.db'} (relative) or sqlite:////abs/path/autopeft.db"
        )
    try:
        dialect_cls = parsed.get_dialect()
    except NoSuchModuleError:
        raise AutopeftError(
            f"unsupported storage URL '{safe}': unknown database or driver "
            f"'{parsed.drivername}'; use e.g. {EXAMPLES}"
        ) from None
    if getattr(dialect_cls, "is_async", False):
        raise AutopeftError(
            f"unsupported storage URL '{safe}': asyncio driver '{parsed.drivername}' is not "
            f"supported; use a synchronous one such as {PG_DRIVERS}, or sqlite:///"
        )
    try:
        dialect_cls.import_dbapi()
    except ImportError as exc:
        module = getattr(exc, "name", None) or "its DBAPI module"
        raise AutopeftError(
            f"unsupported storage URL '{safe}': driver '{parsed.drivername}' needs "
            f"{module}, which is not installed (pip install it, or use {PG_DRIVERS}; "
            "plain postgresql:// needs pip install 'psycopg[binary]')"
        ) from None


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL (None for in-memory and URI databases, or other backends)."""
    parsed = parse(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return None
    return Path(database)


def require_existing(url: str) -> None:
    """For commands that only read: a SQLite file must exist already (nothing is created).

    Raises:
        AutopeftError: the file (or its folder) does not exist.
    """
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise AutopeftError(
            f"no such database '{redact(url)}'{'' if path.parent.is_dir() else ' (nor its folder)'}"
            "; check --storage (or $AUTOPEFT_STORAGE), or run a search to create it"
        )


def open_engine(url: str, *, echo: bool = False) -> Engine:
    """A SQLAlchemy engine for a validated storage URL.

    SQLite: the file's folder is created, and WAL, a 30 s busy timeout, foreign keys and
    atomic transactions are switched on. PostgreSQL: a 10 s connect timeout (unless the URL
    sets one) and pre-ping, so a dead server fails fast and dropped connections recover.
    """
    parsed = parse(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"echo": echo}
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise AutopeftError(
                    f"cannot create the folder of '{redact(url)}': {exc.strerror}"
                ) from None
        kwargs["connect_args"] = {"timeout": 30}
    elif backend == "postgresql":
        kwargs["pool_pre_ping"] = True
        if parsed.get_driver_name() in ("psycopg2", "psycopg"):
            if "connect_timeout" not in parsed.query:
                kwargs["connect_args"] = {"connect_timeout": 10}
    engine = create_engine(parsed, **kwargs)
    if backend == "sqlite":
        _sqlite_events(engine)
    return engine


def short_reason(url: str, exc: BaseException) -> str:
    """First line of a driver error, with the URL's password scrubbed."""
    orig = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(orig).strip().splitlines() if ln.strip()]
    return scrub(lines[0] if lines else type(orig).__name__, url)


def connection_error(url: str, exc: BaseException) -> AutopeftError:
    """A one-line, password-free error for a database that cannot be reached or opened."""
    parsed = parse(url)
    reason = short_reason(url, exc)
    if parsed.get_backend_name() == "sqlite":
        hint = "check that the file's folder exists and is writable"
    elif re.search(r'role "[^"]*" does not exist', reason):
        hint = f"create the role first (e.g. createuser {parsed.username or '<user>'})"
    elif re.search(r'database "[^"]*" does not exist', reason):
        hint = f"create the database first (e.g. createdb {parsed.database})"
    else:
        hint = "is the server running and reachable from here?"
    return AutopeftError(f"cannot open storage '{redact(url)}': {reason}; {hint}")


def _sqlite_events(engine: Engine) -> None:
    """WAL, a busy timeout, foreign keys, and real transactions on SQLite.

    pysqlite's own transaction handling defers BEGIN and commits before DDL, which would
    make migrations non-atomic; we switch it off and emit BEGIN ourselves (the recipe in
    SQLAlchemy's SQLite docs). Writers take the lock up front (BEGIN IMMEDIATE), so a
    reader-turned-writer never fails with "database is locked" despite the busy timeout.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
