"""Packaging: the wheel lists every subpackage and carries the shipped spaces and profiles.

The slow test builds a wheel from a copy of the checkout, installs it (not editable) into a
fresh virtual environment and runs autopeft from there, away from the checkout: an installed
autopeft must find its search spaces and hardware profiles without the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from setuptools import find_packages

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# What a wheel is built from; everything else in the checkout stays out of it.
SOURCES = ("pyproject.toml", "README.md", "autopeft", "search_spaces", "profiles")


def _setuptools_table() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _yaml_stems(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def test_listed_packages_are_the_real_subpackages_plus_the_data():
    table = _setuptools_table()
    mapped = table["package-dir"]
    # A subpackage missing from the list would be missing from the wheel.
    assert sorted(set(table["packages"]) - set(mapped)) == sorted(
        find_packages(str(ROOT), include=["autopeft", "autopeft.*"])
    )
    assert len(table["packages"]) == len(set(table["packages"]))
    for package, folder in mapped.items():
        assert package in table["packages"], package
        assert table["package-data"][package] == ["*.yaml"], package
        assert _yaml_stems(ROOT / folder), f"{folder}/ holds no YAML"


def _run(args: list[str], cwd: Path) -> str:
    # Without PYTHONPATH, and outside the checkout, only the installed autopeft is importable.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _see_this_environment(venv: Path, cwd: Path) -> None:
    """Let ``venv`` import what the running environment has (torch & co., pip) after its own
    packages. ``--system-site-packages`` would not do: it shows the base interpreter's
    packages, not those of a venv the tests run in (scripts/upgrade_deps.sh runs them in one).
    """
    python = str(venv / "bin" / "python")
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=cwd).strip()
    # addsitedir (not a bare path) so that .pth files there, e.g. distutils-precedence, work.
    lines = [f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()]
    (Path(purelib) / "_test_wheel_outer_env.pth").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A fresh venv that sees the running environment's packages, with autopeft installed
    (not editable) from a wheel built from a copy of the checkout."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            # A copy, so that stale build/ leftovers in the checkout cannot reach the wheel.
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = work / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", str(dist), str(src)], cwd=work)
    (wheel,) = dist.glob("autopeft-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    _see_this_environment(venv, work)
    # The running environment's pip, run by the venv's python, installs into the venv; an
    # autopeft installed outside it (editable) is left alone and shadowed.
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index",
          "-q", str(wheel)], cwd=work)
    return venv


@pytest.mark.slow
def test_installed_wheel_finds_its_spaces_and_profiles(wheel_venv, shared_dir, tmp_path):
    python = str(wheel_venv / "bin" / "python")
    script = """
import json
import autopeft
from autopeft.space import list_spaces, load_space, spaces_dir
names = list_spaces()
print(json.dumps({"file": autopeft.__file__, "spaces_dir": str(spaces_dir()),
                  "spaces": names, "loaded": [load_space(n).name for n in names]}))
"""
    got = json.loads(_run([python, "-c", script], cwd=tmp_path))
    venv = wheel_venv.resolve()
    assert Path(got["file"]).resolve().is_relative_to(venv), got["file"]
    assert Path(got["spaces_dir"]).resolve().is_relative_to(venv), got["spaces_dir"]
    assert got["spaces"] == _yaml_stems(ROOT / "search_spaces")
    assert got["loaded"] == got["spaces"]

    autopeft = str(wheel_venv / "bin" / "autopeft")
    listed = json.loads(_run([autopeft, "profile", "--list", "-f", "json"], cwd=tmp_path))
    assert sorted(p["name"] for p in listed) == _yaml_stems(ROOT / "profiles")

    t5_small = shared_dir / "models" / "configs" / "t5-small"
    estimate = json.loads(_run(
        [autopeft, "estimate", "--model", str(t5_small), "--method", "lora",
         "--param", "r=8", "--param", "target_modules=q,v",
         "--profile", "cpu", "--batch-size", "4", "--seq-len", "64", "-f", "json"],
        cwd=tmp_path,
    ))
    # t5-small (d_model 512, 6 + 6 layers): q and v of 6 encoder self-attentions and of 6
    # decoder self- and 6 cross-attentions, each 512 -> 512 with LoRA adding r * (512 + 512).
    assert estimate["trainable_params"] == 36 * 8 * (512 + 512)
    assert estimate["profile"] == "cpu" and isinstance(estimate["fits"], bool), estimate
