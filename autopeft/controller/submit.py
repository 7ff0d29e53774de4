"""``autopeft submit``: send a whole search to a Ray cluster as a Ray Job.

The job's entrypoint is ``autopeft search`` itself, run by the cluster's job server on the
head node. That driver joins the cluster (``--ray-address auto``), schedules the trials on
every node and alone writes to the shared database, so the machine that submitted can
disconnect at once; ``autopeft studies``/``front``/``trials`` against the same store show the
progress, ``ray job logs`` the driver's output.

The storage URL travels in the job's environment (``AUTOPEFT_STORAGE``), never in the
entrypoint command line that ``ray job list`` prints, and every line printed here shows it
without its password. Ray still keeps the job's ``runtime_env`` (environment included) for
people who can use the cluster: prefer a URL without a password plus a ``~/.pgpass`` on
the cluster's nodes.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autopeft.errors import AutopeftError

ADDRESS_ENV = "RAY_API_SERVER_ADDRESS"
OWNED = ("--storage", "--ray-address")  # submit sets these; the search must not
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
ENTRYPOINT = ("python", "-m", "autopeft.cli.main", "search")
# The project folder shipped as working_dir must stay small (Ray caps packages at ~500 MiB).
EXCLUDES = [".git", "**/__pycache__", "*.db", "ray_results"]


@dataclass(frozen=True)
class JobSpec:
    """What is sent to the job server (built and checked before anything is sent)."""

    study: str
    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)


def job_server_url(address: str | None) -> str:
    """``host:port`` or ``http(s)://host:port`` of the dashboard / job server as a URL;
    None means ``$RAY_API_SERVER_ADDRESS`` (Ray's own variable for it)."""
    address = (address or os.environ.get(ADDRESS_ENV) or "").strip().rstrip("/")
    if not address:
        raise AutopeftError(f"no job server: pass --address http://HEAD:8265 or set "
                            f"{ADDRESS_ENV}")
    if address.startswith("ray://"):
        raise AutopeftError(
            f"'{address}' is a Ray client address; submit needs the job server (dashboard) "
            "address, e.g. http://HEAD:8265"
        )
    return address if "://" in address else f"http://{address}"


def prepare_job(
    search_argv: Sequence[str],
    *,
    storage: str | None,
    working_dir: str | None = None,
    env: Mapping[str, str] | None = None,
    validate: Callable[[Sequence[str]], Any] | None = None,
) -> JobSpec:
    """Check the search arguments and the storage URL; build the job to submit.

    Args:
        search_argv: Arguments of ``autopeft search`` (``--task ... --model ...``). They are
            parsed here, so a typo fails on this machine instead of on the cluster. A
            study name is added when missing, so that the submitter knows what to look for.
        storage: SQLAlchemy URL of a database the cluster can reach (PostgreSQL); None
            means ``$AUTOPEFT_STORAGE`` (never the local default SQLite file).
        working_dir: Local folder shipped to the cluster as the job's working directory
            (a checkout with local search spaces, say); None runs in the cluster's own.
        env: Extra environment variables for the driver and every trial.
        validate: Parses the search arguments into settings (with ``study``, ``task`` and
            ``model``), raising AutopeftError on bad ones; default
            :meth:`autopeft.settings.SearchSettings.from_argv`.

    Raises:
        AutopeftError: bad search arguments, ``--storage``/``--ray-address`` among them, a
            bad storage URL, a relative SQLite path or a missing working directory.
    """
    from autopeft.controller.preflight import make_study_name
    from autopeft.controller.ray_env import RAY_ENV
    from autopeft.paths import ENV_STORAGE
    from autopeft.store.url import parse, redact, validate_url

    argv = list(search_argv)
    for arg in argv:
        if arg.split("=", 1)[0] in OWNED:
            raise AutopeftError(
                f"'{arg.split('=', 1)[0]}' belongs to submit, not to the search: the job joins "
                "the cluster it is sent to and writes to the store given to submit"
            )
    if validate is None:
        from autopeft.settings import SearchSettings

        validate = SearchSettings.from_argv
    args = validate(argv)
    study = args.study or make_study_name(args.task, args.model)
    if not args.study:
        argv += ["--study", study]

    storage = storage or os.environ.get(ENV_STORAGE)
    if not storage:
        raise AutopeftError(f"no store for the job: pass --storage postgresql://... (a database "
                            f"the cluster reaches) or set {ENV_STORAGE}")
    validate_url(storage)
    url = parse(storage)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:" or not os.path.isabs(database):
            raise AutopeftError(
                f"storage '{redact(storage)}' is not an absolute SQLite path the cluster can "
                "open; give a database server the cluster reaches (postgresql://...)"
            )
    runtime_env: dict[str, Any] = {
        "env_vars": {
            # Keep the local choice of Ray auth when one was made (token-auth clusters).
            **{k: os.environ.get(k, v) for k, v in RAY_ENV.items()},
            **dict(env or {}),
            "AUTOPEFT_STORAGE": storage,
        }
    }
    if working_dir is not None:
        if not os.path.isdir(working_dir):
            raise AutopeftError(f"--working-dir '{working_dir}' is not a folder")
        runtime_env["working_dir"] = os.path.abspath(working_dir)
        runtime_env["excludes"] = list(EXCLUDES)
    entrypoint = shlex.join([*ENTRYPOINT, *argv, "--ray-address", "auto"])
    return JobSpec(study=study, entrypoint=entrypoint, runtime_env=runtime_env,
                   metadata={"autopeft_study": study, "autopeft_store": redact(storage)})


def _client(address: str) -> Any:
    from autopeft.controller.ray_env import ray_environment

    ray_environment()  # before ray is imported: no auth token on local clusters
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise AutopeftError("submit needs Ray's job client: pip install 'ray[default]'") from None
    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise AutopeftError(
            f"cannot reach the Ray job server at {address} ({str(exc).splitlines()[0][:160]}); "
            "is the head node running its dashboard (ray start --head --include-dashboard "
            "true --dashboard-port ...)?"
        ) from None


def submit_search(
    search_argv: Sequence[str],
    *,
    address: str | None,
    storage: str | None,
    working_dir: str | None = None,
    wait: bool = False,
    env: Mapping[str, str] | None = None,
    say: Callable[[str], None] | None = None,
    timeout: float | None = None,
    validate: Callable[[Sequence[str]], Any] | None = None,
) -> str:
    """Submit ``autopeft search <search_argv>`` as a Ray Job; returns the job id.

    Args:
        search_argv: Arguments of ``autopeft search`` without ``--storage``/``--ray-address``.
        address: The cluster's job server (dashboard), e.g. ``http://head:8265``; None
            means ``$RAY_API_SERVER_ADDRESS``.
        storage: The shared store's URL; None means ``$AUTOPEFT_STORAGE``.
        working_dir: Local folder to ship as the job's working directory, or None.
        wait: Follow the job until it ends (the search then runs as if local).
        env: Extra environment variables for the job.
        say: Where progress lines go (default: print).
        timeout: With ``wait``, give up waiting after this many seconds (the job goes on).
        validate: The search-argument parser (see :func:`prepare_job`).

    Raises:
        AutopeftError: bad input (nothing is submitted), an unreachable job server, or with
            ``wait`` a job that failed or was stopped.
    """
    from autopeft.store.url import redact

    say = say or (lambda line: print(line, flush=True))
    spec = prepare_job(search_argv, storage=storage, working_dir=working_dir, env=env,
                       validate=validate)
    storage = spec.runtime_env["env_vars"]["AUTOPEFT_STORAGE"]
    url = job_server_url(address)
    client = _client(url)
    try:
        job_id = client.submit_job(entrypoint=spec.entrypoint, runtime_env=spec.runtime_env,
                                   metadata=spec.metadata)
    except RuntimeError as exc:
        raise AutopeftError(f"the job server at {url} refused the job: "
                            f"{_scrub(str(exc), storage).splitlines()[0][:300]}") from None
    safe = shlex.quote(redact(storage))
    say(f"submitted job {job_id} to {url}: study {spec.study}, store {redact(storage)}")
    say(f"  progress: autopeft studies --storage {safe}; "
        f"autopeft front --study {spec.study} --storage {safe}")
    say(f"  driver log: ray job logs {job_id} --address {url} --follow")
    if wait:
        status = wait_for_job(url, job_id, timeout=timeout, say=say)
        if status != "SUCCEEDED":
            tail = "\n".join(_scrub(job_logs(url, job_id), storage).splitlines()[-20:])
            raise AutopeftError(f"job {job_id} ended {status}; last lines of its log:\n{tail}")
    return job_id


def wait_for_job(address: str, job_id: str, *, timeout: float | None = None,
                 poll: float = 2.0, say: Callable[[str], None] | None = None) -> str:
    """Poll a job until it ends; returns ``SUCCEEDED``, ``FAILED`` or ``STOPPED``.

    Raises:
        AutopeftError: the job did not end within ``timeout`` seconds (it keeps running).
    """
    client = _client(job_server_url(address))
    deadline = None if timeout is None else time.monotonic() + timeout
    last = None
    while True:
        status = str(getattr(client.get_job_status(job_id), "value", ""))
        if status != last and say is not None:
            say(f"job {job_id}: {status}")
        last = status
        if status in TERMINAL:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise AutopeftError(f"job {job_id} still {status} after {timeout:.0f}s; it goes "
                                "on running (ray job stop to end it)")
        time.sleep(poll)


def job_logs(address: str, job_id: str) -> str:
    """The driver output of a job so far."""
    return _client(job_server_url(address)).get_job_logs(job_id)


def job_status(address: str, job_id: str) -> str:
    """The job's status now: ``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``STOPPED``."""
    return str(getattr(_client(job_server_url(address)).get_job_status(job_id), "value", ""))


def stop_job(address: str, job_id: str) -> bool:
    """Ask the job server to stop a job (its driver gets a signal and ends the search);
    False when the job had already ended."""
    return bool(_client(job_server_url(address)).stop_job(job_id))


def _scrub(text: str, storage: str) -> str:
    from autopeft.store.url import scrub

    return scrub(text, storage)
