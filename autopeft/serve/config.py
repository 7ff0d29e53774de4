"""What ``autopeft serve`` runs with, checked before anything listens.

Mutating endpoints (starting and stopping searches) need a bearer token. Without one, the
server accepts them only from this machine (bound to a loopback address); bound anywhere
else it refuses to start unless it is read-only. The token is never printed or logged.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from autopeft.errors import AutopeftError

TOKEN_ENV = "AUTOPEFT_API_TOKEN"


@dataclass(frozen=True)
class ServeConfig:
    """How the server runs.

    Attributes:
        storage: SQLAlchemy URL of the store (None: ``$AUTOPEFT_STORAGE`` or the default).
        host: Address to bind.
        port: Port to bind.
        token: Bearer token for mutating endpoints, or None.
        read_only: Refuse every mutating endpoint (403).
        ray_address: Job server of a Ray cluster: searches start as Ray Jobs there.
        log_dir: Where the output of searches started as local processes goes.
        stop_timeout: Seconds a stop waits for a search to end before signalling harder.
    """

    storage: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = field(default=None, repr=False)
    read_only: bool = False
    ray_address: str | None = None
    log_dir: str | None = None
    stop_timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.token is not None and not self.token.strip():
            raise AutopeftError("the API token is empty: put a secret in AUTOPEFT_API_TOKEN "
                                "or the --token-file")
        if self.token is None and not self.read_only and not is_loopback(self.host):
            raise AutopeftError(
                f"refusing to serve on {self.host} without an API token: anyone who reaches "
                f"it could start and stop searches; set {TOKEN_ENV} or --token-file, bind "
                "127.0.0.1, or pass --read-only"
            )

    @property
    def mutations(self) -> str:
        """How mutating endpoints are guarded, in words (for the start-up line)."""
        if self.read_only:
            return "read-only"
        if self.token is not None:
            return "searches need the API token (Authorization: Bearer)"
        return "searches allowed without a token from this machine only"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_token(token_file: str | None) -> str | None:
    """The token from ``token_file`` (first line), else ``$AUTOPEFT_API_TOKEN``, else None."""
    if token_file:
        path = Path(token_file).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            raise AutopeftError(f"cannot read --token-file {path}: {exc.strerror}") from None
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise AutopeftError(f"--token-file {path} is empty: write the token in it")
        return token
    token = os.environ.get(TOKEN_ENV)
    return token if token else None
