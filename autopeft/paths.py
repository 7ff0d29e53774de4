"""Where autopeft finds its shipped data, shared assets, local data and its default database.

The shipped data (``search_spaces/``, ``profiles/``) sits at the top of the repository and
inside the package of an installed wheel; :func:`shipped_dir` finds it in both. Assets are
never copied into the repository: they are found by path. Every location can be set
explicitly (flag or environment variable); the defaults look for a ``shared/`` folder beside
the project checkout, as laid out on the development machines and in CI.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

SHIPPED_FOLDERS = ("search_spaces", "profiles")

ENV_SHARED = "AUTOPEFT_SHARED"
ENV_DATA_DIR = "AUTOPEFT_DATA_DIR"
ENV_STORAGE = "AUTOPEFT_STORAGE"
ENV_HOME = "AUTOPEFT_HOME"


def shipped_dir(name: str) -> Traversable:
    """A folder of data that autopeft ships: ``search_spaces`` or ``profiles``.

    Args:
        name: One of :data:`SHIPPED_FOLDERS`.

    Returns:
        ``autopeft/<name>`` inside an installed wheel (package data, mapped there by
        pyproject.toml), else ``<checkout>/<name>`` for an editable install or a checkout on
        ``PYTHONPATH``. The folder may not exist; callers say so in their own words.

    Raises:
        ValueError: ``name`` is not a shipped folder.
    """
    if name not in SHIPPED_FOLDERS:
        raise ValueError(f"not a shipped folder: {name!r} (known: {', '.join(SHIPPED_FOLDERS)})")
    packaged = resources.files("autopeft") / name
    if packaged.is_dir():
        return packaged
    # In a checkout the package has no such folder: the data sits beside the package.
    return Path(__file__).resolve().parent.parent / name


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
    # The folder is created by the first search that writes (never by a command that reads).
    return f"sqlite:///{autopeft_home() / 'autopeft.db'}"
