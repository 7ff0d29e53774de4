"""Where autopeft finds shared assets, local data and its default database.

Assets are never copied into the repository: they are found by path. Every location can be
set explicitly (flag or environment variable); the defaults look for a ``shared/`` folder
beside the project checkout, as laid out on the development machines and in CI.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_SHARED = "AUTOPEFT_SHARED"
ENV_DATA_DIR = "AUTOPEFT_DATA_DIR"
ENV_STORAGE = "AUTOPEFT_STORAGE"
ENV_HOME = "AUTOPEFT_HOME"


def _candidates() -> list[Path]:
    here = Path(__file__).resolve().parent.parent  # the checkout root when installed -e
    cwd = Path.cwd()
    return [here.parent / "shared", cwd.parent / "shared", cwd / "shared"]


def find_shared_dir() -> Path | None:
    """The shared assets folder: ``$AUTOPEFT_SHARED`` or a ``shared/`` beside the checkout."""
    env = os.environ.get(ENV_SHARED)
    if env:
        return Path(env).expanduser()
    for cand in _candidates():
        if (cand / "README.md").is_file() and (cand / "data").is_dir():
            return cand
    return None


def default_data_dir() -> Path | None:
    """Local task data: ``$AUTOPEFT_DATA_DIR`` or ``<shared>/data`` when present, else None."""
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    shared = find_shared_dir()
    if shared is not None and (shared / "data").is_dir():
        return shared / "data"
    return None


def autopeft_home() -> Path:
    """Per-user data folder (``$AUTOPEFT_HOME`` or the platform's user data dir)."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("autopeft", appauthor=False))


def default_storage_url() -> str:
    """``$AUTOPEFT_STORAGE`` or an embedded SQLite file in the per-user data folder."""
    env = os.environ.get(ENV_STORAGE)
    if env:
        return env
    home = autopeft_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'autopeft.db'}"
