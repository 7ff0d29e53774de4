"""Shipped data folders: found beside the package in a checkout (a wheel: tests/test_wheel.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autopeft.paths import SHIPPED_FOLDERS, shipped_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", SHIPPED_FOLDERS)
def test_shipped_dir_in_a_checkout_is_the_top_level_folder(name):
    folder = shipped_dir(name)
    assert Path(str(folder)) == ROOT / name
    assert any(p.name.endswith(".yaml") for p in folder.iterdir())


def test_shipped_dir_refuses_other_names():
    with pytest.raises(ValueError, match="not a shipped folder: 'tests'"):
        shipped_dir("tests")
