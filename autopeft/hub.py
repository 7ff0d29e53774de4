"""Is the Hugging Face hub reachable? Asked once, quickly, before any hub download.

huggingface_hub and datasets retry an unreachable host with back-off for ~25 s before
failing; an offline user should get the one-line "point at a local copy" error at once.
Models (``modeling.py``) and task data (``tasks/hub.py``) both ask here.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
_TRUE = {"1", "true", "yes", "on"}


def hub_offline_flag() -> str | None:
    """``VAR=value`` of the offline-mode variable the user set, or None."""
    for var in OFFLINE_VARS:
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var}={os.environ[var]}"
    return None


@functools.lru_cache(maxsize=8)
def _can_connect(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_unreachable_reason(timeout: float = 3.0) -> str | None:
    """Why the hub (``HF_ENDPOINT``) cannot be reached, or None when it can (or may).

    Behind a proxy the proxy resolves and connects, so the hub is assumed reachable and the
    libraries' own errors speak.
    """
    flag = hub_offline_flag()
    if flag:
        return f"offline mode ({flag})"
    if any(os.environ.get(var) for var in PROXY_VARS):
        return None
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.getaddrinfo(host, port)
    except socket.gaierror:
        return "the hub's host name does not resolve"
    except OSError:
        return None
    if not _can_connect(host, port, timeout):
        return f"no connection to {host}:{port}"
    return None


def hub_reachable(timeout: float = 3.0) -> bool:
    return hub_unreachable_reason(timeout) is None
