"""Is the Hugging Face hub reachable? Asked once, quickly, before any hub download.

huggingface_hub retries an unreachable host with back-off for ~25 s before failing; an
offline user should get the one-line "point at a local copy" error at once instead.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse


def hub_offline_flag() -> bool:
    """True when the user asked for offline mode (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return True
    return False


@functools.lru_cache(maxsize=4)
def _can_connect(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connection to the hub endpoint (``HF_ENDPOINT``) succeeds within ``timeout``."""
    if hub_offline_flag():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    return _can_connect(url.hostname or "huggingface.co", port, timeout)
