"""Files a study keeps on disk, reached only through its own artifacts folder.

Paths read back from the database (a trial's ``adapter_path``) are data, not orders: a row
edited by hand, or written by another search, could name any folder. Everything that deletes
or reads a stored path goes through :func:`inside` first, which resolves it (symbolic links
included) and refuses it unless it lies strictly inside the study's artifacts folder; and
:func:`copy_inside` copies a folder without ever following a link out of that folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from autopeft.errors import AutopeftError


def inside(root: str | Path, stored: str | Path, *, what: str = "stored path") -> Path:
    """``stored`` resolved, when it lies strictly inside ``root`` (also resolved).

    Args:
        root: The study's artifacts folder (``settings["artifacts_dir"]``).
        stored: A path read from the database; a relative one is taken relative to ``root``.
        what: How to name the path in the error (e.g. ``"trial 3's adapter_path"``).

    Raises:
        AutopeftError: ``stored`` resolves to ``root`` itself or to anything outside it.
    """
    base = Path(root).expanduser().resolve()
    path = Path(stored).expanduser()
    resolved = (path if path.is_absolute() else base / path).resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise AutopeftError(f"{what} '{stored}' is outside the study's artifacts folder "
                            f"{base}; autopeft touches nothing else")
    return resolved


def links_out(folder: Path, root: Path) -> list[str]:
    """Symbolic links below ``folder`` whose target is not inside ``root``, as relative paths
    (dangling links count: their target is nothing the study made)."""
    base = root.resolve()
    bad = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                target = path.resolve()
                if not target.exists() or not target.is_relative_to(base):
                    bad.append(str(path.relative_to(folder)))
    return sorted(bad)


def copy_inside(source: Path, dest: Path, root: Path) -> None:
    """Copy the folder ``source`` (inside ``root``) to ``dest``; refuse links out of ``root``.

    Links that stay inside ``root`` are copied as the files they point to, so the copy
    stands on its own.

    Raises:
        AutopeftError: ``source`` holds a link leaving ``root`` (nothing is copied).
        OSError: the copy itself failed (the caller removes the partial ``dest``).
    """
    bad = links_out(source, root)
    if bad:
        raise AutopeftError(f"{source} holds symbolic links out of the study's artifacts "
                            f"folder ({', '.join(bad[:3])}); nothing was copied")
    shutil.copytree(source, dest, dirs_exist_ok=True)


def prune(root: str | Path, paths: list[str]) -> list[str]:
    """Delete stored adapter folders that lie inside ``root``; returns the ones refused.

    Used by ``--save-adapters front``: a path outside the study's folder (or the folder
    itself) is never deleted, whatever the database says.
    """
    refused = []
    for stored in paths:
        try:
            path = inside(root, stored)
        except AutopeftError:
            refused.append(stored)
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    return refused
