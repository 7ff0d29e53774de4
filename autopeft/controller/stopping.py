"""How a search ends when it does not finish: Ctrl-C, a store that stops taking writes, a crash.

Whatever stops it, the study is closed the way a resume expects: Optuna trials still
``RUNNING`` become ``interrupted`` rows with their configuration queued again (``WAITING``
trials stay queued: they are what the resume runs first), finished trials the driver had
not stored get their row back, and the study is marked ``interrupted`` or ``failed`` with
the reason. Each step is tried on its own, because the store may be the very thing that
broke; what could not be written is recovered by the next resume instead.
"""

from __future__ import annotations

import errno
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.status import StudyStatus

# OS errors that are the environment's doing (no space, read-only, gone), not a bug.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                      errno.EIO, errno.EFBIG}


class StoreFailed(BaseException):
    """A write to the study's store (ours or Optuna's) failed while trials ran.

    A BaseException, like KeyboardInterrupt, on purpose: Ray Tune logs and swallows the
    Exceptions of callbacks and searchers (a page of traceback per trial, the run going on
    against a store that takes no writes), while this one ends ``fit`` at once; the search
    turns its cause into one line.
    """


@contextmanager
def store_writes() -> Iterator[None]:
    """Turn a failed store write inside Ray Tune's loop into :class:`StoreFailed`."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:
        raise StoreFailed(str(exc).splitlines()[0]) from exc
    except Exception as exc:
        from optuna.exceptions import StorageInternalError

        if isinstance(exc, StorageInternalError):
            raise StoreFailed(str(exc).splitlines()[0]) from exc
        raise


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def failure_cause(exc: BaseException, url: str) -> str | None:
    """One line naming why a search stopped, when the cause is the user's or the
    environment's (bad input, a store that refuses writes, a full or read-only disk); None
    for anything else (a bug, whose traceback is worth seeing)."""
    from sqlalchemy.exc import DBAPIError

    from autopeft.store.url import redact, short_reason

    for err in _chain(exc):
        if isinstance(err, AutopeftError):
            return str(err)
        if isinstance(err, DBAPIError):
            return f"storage '{redact(url)}' refused a write: {short_reason(url, err)}"
        if isinstance(err, OSError) and err.errno in ENVIRONMENT_ERRNOS:
            where = f" ({err.filename})" if err.filename else ""
            return f"{err.strerror or err}{where}"
    return None


def close_study(store: Any, name: str, space: Any, status: StudyStatus, reason: str,
                say: Callable[[str], None]) -> bool:
    """Close the study after its search stopped early; True when its status was written.

    Never raises: each step that fails is left to the next resume (which runs the same
    recovery), and the caller reports what happened.
    """
    from autopeft.controller import resume

    with sigint_ignored():  # a second Ctrl-C must not leave the bookkeeping half-done
        try:
            rec = resume.recover(store, name, resume.optuna_study_name(name), space)
            if rec.interrupted:
                say(f"trials {', '.join(map(str, rec.interrupted))} were running: stored as "
                    "interrupted, their configurations queued for the next resume")
        except Exception:  # noqa: BLE001 - the store may be what failed; resume retries
            pass
        try:
            store.set_study_status(name, status, finished=True, reason=reason)
            return True
        except Exception:  # noqa: BLE001 - same: reported by the caller
            return False


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _sigint_handled_by(handler: Any) -> Iterator[None]:
    """SIGINT goes to ``handler`` inside the block (main thread only: elsewhere Python
    cannot set handlers), the previous handler restored after."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def sigint_raises() -> AbstractContextManager[None]:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt here, even if the process inherited it
    ignored (a background job) or a library installed its own handler; restored after."""
    return _sigint_handled_by(signal.default_int_handler)


def sigint_ignored() -> AbstractContextManager[None]:
    return _sigint_handled_by(signal.SIG_IGN)
