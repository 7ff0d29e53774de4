"""Searches the server started: a local ``autopeft search`` process or a Ray Job.

A local search is the CLI itself (``python -m autopeft.cli.main search ...``) in its own
session, so that it outlives the server and a Ctrl-C of the server does not reach it. The
storage URL travels in its environment (``AUTOPEFT_STORAGE``), never on its command line,
which every user of the machine can read. With a Ray job server, the search is submitted as
a Ray Job by :func:`autopeft.controller.submit.submit_search` (same rule for the URL).

Stopping sends SIGINT (the search marks its study ``interrupted`` and keeps every finished
trial) or asks the job server to stop the job; a search that does not end within the stop
timeout gets SIGTERM, then SIGKILL (its whole process group: Ray's local processes too).
Whenever a search ends while its study still says ``running`` (killed, crashed), the study
is marked ``interrupted`` through the store, so that ``--resume`` continues it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from autopeft.errors import AutopeftError
from autopeft.status import StudyStatus, TrialStatus, controller_alive

SEARCH_COMMAND = (sys.executable, "-m", "autopeft.cli.main", "search")
_LOG_TAIL = 4000  # characters of a search's output shown by GET /v1/searches/{name}


class Conflict(AutopeftError):
    """The request clashes with a search that runs (HTTP 409)."""


@dataclass
class Run:
    """One search started by this server."""

    study: str
    backend: str  # "process" or "ray-job"
    argv: list[str]
    started_at: datetime
    log_path: str | None = None
    pid: int | None = None
    job_id: str | None = None
    returncode: int | None = None
    job_status: str | None = None
    stop_requested: bool = False
    ended: threading.Event = field(default_factory=threading.Event, repr=False)
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def state(self) -> str:
        if self.ended.is_set():
            return "ended"
        return "stopping" if self.stop_requested else "running"

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "backend": self.backend, "state": self.state,
                "pid": self.pid, "job_id": self.job_id, "returncode": self.returncode,
                "job_status": self.job_status, "stop_requested": self.stop_requested,
                "started_at": self.started_at.isoformat()}


class Searches:
    """The searches this server started, by study name.

    Args:
        store: The server's :class:`~autopeft.store.Store`.
        log_dir: Folder for the output of local searches.
        ray_address: A Ray job server: searches start as Ray Jobs there (None: locally).
        stop_timeout: Seconds to wait after SIGINT (or ``ray job stop``) before SIGTERM.
    """

    def __init__(self, store: Any, *, log_dir: str | Path, ray_address: str | None = None,
                 stop_timeout: float = 60.0) -> None:
        self.store = store
        self.log_dir = Path(log_dir)
        self.ray_address = ray_address
        self.stop_timeout = stop_timeout
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    # -- reading ----------------------------------------------------------------------------

    def get(self, study: str) -> Run | None:
        with self._lock:
            return self._runs.get(study)

    def all(self) -> list[Run]:
        with self._lock:
            return list(self._runs.values())

    def log_tail(self, run: Run) -> str:
        """The last lines the search printed, without the storage password."""
        from autopeft.store.url import scrub

        text = ""
        if run.log_path and Path(run.log_path).is_file():
            with open(run.log_path, "rb") as fh:
                fh.seek(max(0, os.path.getsize(run.log_path) - _LOG_TAIL))
                text = fh.read().decode("utf-8", "replace")
        elif run.job_id and self.ray_address:
            from autopeft.controller.submit import job_logs

            try:
                text = job_logs(self.ray_address, run.job_id)[-_LOG_TAIL:]
            except AutopeftError as exc:
                text = str(exc)
        return scrub(text, self.store.url)

    # -- starting ---------------------------------------------------------------------------

    def start(self, study: str, argv: list[str]) -> Run:
        """Start ``autopeft search <argv>`` (which names ``study``) in the background.

        Raises:
            Conflict: a search of this study runs (started here or elsewhere).
            AutopeftError: the Ray job server refused or cannot be reached.
        """
        with self._lock:
            known = self._runs.get(study)
            if known is not None and not known.ended.is_set():
                raise Conflict(f"a search of study '{study}' is already running here; "
                               f"DELETE /v1/searches/{study} stops it")
            existing = self.store.get_study(study)
            if (existing is not None and existing.status == StudyStatus.RUNNING
                    and controller_alive(existing.settings) is not False):
                raise Conflict(f"study '{study}' is marked running by another search; wait for "
                               "it, or stop it first")
            now = datetime.now(timezone.utc)
            run = Run(study=study, backend="ray-job" if self.ray_address else "process",
                      argv=list(argv), started_at=now)
            if self.ray_address:
                self._submit(run)
            else:
                self._spawn(run)
            self._runs[study] = run
        threading.Thread(target=self._watch, args=(run,), name=f"watch-{study}",
                         daemon=True).start()
        return run

    def _spawn(self, run: Run) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{run.study}-{run.started_at:%Y%m%d-%H%M%S}.log"
        run.log_path = str(log)
        env = {**os.environ, "AUTOPEFT_STORAGE": self.store.url, "PYTHONUNBUFFERED": "1"}
        with open(log, "ab") as out:
            run.proc = subprocess.Popen([*SEARCH_COMMAND, *run.argv], stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        run.pid = run.proc.pid

    def _submit(self, run: Run) -> None:
        from autopeft.controller.submit import submit_search
        from autopeft.settings import SearchSettings

        run.job_id = submit_search(run.argv, address=self.ray_address, storage=self.store.url,
                                   say=lambda line: None, validate=SearchSettings.from_argv)

    def _watch(self, run: Run) -> None:
        """Wait for the search to end, then settle its study's status."""
        try:
            if run.proc is not None:
                run.returncode = run.proc.wait()
            else:
                from autopeft.controller.submit import wait_for_job

                run.job_status = wait_for_job(self.ray_address, run.job_id, poll=1.0)
        except AutopeftError as exc:  # the job server went away: the job's fate is unknown
            run.job_status = f"unknown ({exc})"
        finally:
            self.settle(run.study, stopped=run.stop_requested)
            run.ended.set()

    # -- stopping ---------------------------------------------------------------------------

    def stop(self, study: str) -> str:
        """Stop the study's search and wait for it to end; returns the study's status.

        A search this server did not start is stopped too when its recorded controller is a
        live ``autopeft search`` process on this machine.

        Raises:
            Conflict: nothing to stop (no running search of this study is known).
        """
        run = self.get(study)
        if run is not None and not run.ended.is_set():
            run.stop_requested = True
            if run.proc is not None:
                _signal(run.proc.pid, signal.SIGINT)
                if not run.ended.wait(self.stop_timeout):
                    _escalate(run.proc.pid, run.ended.wait)
            else:
                from autopeft.controller.submit import stop_job

                stop_job(self.ray_address, run.job_id)
                run.ended.wait(self.stop_timeout)
            run.ended.wait(30)
        else:
            self._stop_foreign(study)
        return self.settle(study, stopped=True)

    def _stop_foreign(self, study: str) -> None:
        import psutil

        record = self.store.get_study(study)
        if record is None or record.status != StudyStatus.RUNNING:
            raise Conflict(f"study '{study}' has no running search to stop")
        settings = record.settings or {}
        if not controller_alive(settings):
            return  # died without cleaning up (or on another host): settle marks it
        pid = int(settings["controller_pid"])
        try:
            proc = psutil.Process(pid)
            is_search = "search" in proc.cmdline() and "autopeft" in " ".join(proc.cmdline())
        except psutil.Error:
            return
        if not is_search:  # the pid was reused by another program: leave it alone
            return
        _signal(pid, signal.SIGINT)

        def gone(timeout: float) -> bool:
            try:
                proc.wait(timeout)
                return True
            except psutil.TimeoutExpired:
                return False

        if not gone(self.stop_timeout):
            _escalate(pid, gone)

    def settle(self, study: str, *, stopped: bool) -> str | None:
        """Mark a study ``interrupted`` when its search is over but it says ``running`` (or,
        after a stop request, says ``finished`` because Ray Tune ended quietly on SIGINT);
        returns the study's status (None: no such study, e.g. a search that never began)."""
        record = self.store.get_study(study)
        if record is None:
            return None
        stale = record.status == StudyStatus.RUNNING or (
            stopped and record.status == StudyStatus.FINISHED and _short_of_budget(
                self.store, record))
        if stale:
            self.store.set_study_status(study, StudyStatus.INTERRUPTED, finished=True)
            return StudyStatus.INTERRUPTED.value
        return record.status

    def close(self) -> None:
        """Stop watching (running searches go on: they are their own processes)."""
        with self._lock:
            self._runs.clear()


def _short_of_budget(store: Any, record: Any) -> bool:
    """Fewer trials used the budget than ``--trials`` asked for (interrupted ones do not)."""
    total, _ = store.trial_page(record.name, limit=0)
    again, _ = store.trial_page(record.name, status=TrialStatus.INTERRUPTED.value, limit=0)
    return total - again < int((record.budget or {}).get("trials") or 0)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _escalate(pid: int, wait: Callable[[float], bool]) -> None:
    """SIGTERM, then SIGKILL, to the search's process group (it leads its own session)."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            _signal(pid, sig)
        if wait(grace):
            return
