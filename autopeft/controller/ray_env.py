"""Starting or joining Ray with the settings this project needs.

Ray 2.60 turns token auth on by default and ``ray start --head`` defaults to port 6379
(owned by Redis on our machines), so a local Ray is started by ``ray.init`` (which picks free
ports) with auth and usage stats off, and a short temp dir (Unix socket paths are limited
to ~107 characters).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from autopeft.errors import AutopeftError

RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def ray_environment() -> None:
    """Set Ray's environment before ``import ray`` (user values win)."""
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    # Ray Tune's console reporter would interleave with our own progress lines.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Ctrl-C must interrupt the search (study `interrupted`, running trials queued again,
    # exit 130): Tune's handler would end the run quietly as if it had finished.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    # Failed trials report a status and no objective values; the searcher handles them.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")


def default_temp_dir() -> str:
    path = Path(tempfile.gettempdir()) / f"autopeft-ray-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when a ``host:port`` cluster address does not answer."""
    import socket

    if address in ("auto", "local") or "://" in address:  # ray resolves these itself
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise AutopeftError(
            f"bad --ray-address '{address}': expected HOST:PORT of the head's GCS (e.g. "
            "10.0.0.5:6380), 'auto', or ray://HOST:PORT"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise AutopeftError(
            f"cannot reach the Ray cluster at '{address}' ({exc.strerror or exc}); check "
            "`ray status --address ...` on the head, or drop --ray-address to run locally"
        ) from None


def init_ray(address: str | None = None, *, num_cpus: int | None = None,
             num_gpus: int | None = None, temp_dir: str | None = None) -> Any:
    """Join ``address`` or start a private local Ray; returns the ``ray`` module."""
    ray_environment()
    import ray

    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": True,
        "logging_level": "ERROR",
    }
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise AutopeftError(
                f"cannot reach the Ray cluster at '{address}' ({str(exc).splitlines()[0][:160]}); "
                "check `ray status --address ...` or drop --ray-address to run locally"
            ) from None
        return ray
    ray.init(num_cpus=num_cpus or os.cpu_count(), num_gpus=num_gpus,
             _temp_dir=temp_dir or default_temp_dir(), **kwargs)
    return ray
