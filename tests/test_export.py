"""`autopeft export` touches only the study's own artifacts folder and never half-writes.

A trial's ``adapter_path`` comes from the database, so it is checked, not trusted; the copy
goes to a hidden sibling renamed into place, so a failure leaves nothing to clean up.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from autopeft.store import Store


def _study(tmp_path: Path, adapter: Path | str | None = None) -> tuple[str, Path]:
    """A study whose trial 0 completed with an adapter folder (trial-0 in its artifacts)."""
    root = tmp_path / "artifacts" / "s"
    folder = root / "trial-0"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(256 * 1024))
    db = f"sqlite:///{tmp_path}/store.db"
    store = Store(db)
    store.create_study("s", task="glue/sst2", model="m", space_name="quick", space={},
                       budget={}, hardware={}, settings={"artifacts_dir": str(root)},
                       objectives=[("accuracy", "maximize")])
    store.add_trial("s", number=0, method="lora", params={"r": 8}, learning_rate=1e-3,
                    status="completed", primary_metric=0.8, trainable_params=10,
                    total_params=100, extra={"adapter_path": str(adapter or folder)})
    store.set_pareto("s", [0])
    return db, folder


def _export(db: str, out: Path | str, fsize: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:  # a real write failure part-way: the file-size limit (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "autopeft.cli.main", "export", "--study", "s", "--trial", "0",
         "--output", str(out), "--storage", db],
        capture_output=True, text=True, timeout=120, preexec_fn=limit if fsize else None)


def _one_line(run: subprocess.CompletedProcess, needle: str) -> None:
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert needle in lines[0], lines[0]


def test_export_copies_and_writes_a_card(tmp_path):
    db, folder = _study(tmp_path)
    run = _export(db, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    assert (out / "adapter_model.safetensors").read_bytes() == (
        folder / "adapter_model.safetensors").read_bytes()
    assert "trial 0" in (out / "README.md").read_text()
    assert oct(out.stat().st_mode & 0o777) != oct(0o700)  # the umask's mode, not mkdtemp's
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_stored_path_outside_the_artifacts_folder_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret.txt").write_text("not the study's")
    db, _ = _study(tmp_path, adapter=victim)
    run = _export(db, tmp_path / "out")
    _one_line(run, "outside the study's artifacts folder")
    assert not (tmp_path / "out").exists()


def test_a_link_out_of_the_adapter_folder_is_not_followed(tmp_path):
    db, folder = _study(tmp_path)
    (folder / "tokenizer.json").symlink_to("/etc/passwd")
    run = _export(db, tmp_path / "out")
    _one_line(run, "symbolic links out of the study's artifacts folder (tokenizer.json)")
    assert not (tmp_path / "out").exists()


def test_a_link_inside_the_artifacts_folder_is_copied_as_a_file(tmp_path):
    db, folder = _study(tmp_path)
    (folder.parent / "shared.txt").write_text("inside")
    (folder / "notes.txt").symlink_to(folder.parent / "shared.txt")
    assert _export(db, tmp_path / "out").returncode == 0
    copied = tmp_path / "out" / "notes.txt"
    assert not copied.is_symlink() and copied.read_text() == "inside"


@pytest.mark.parametrize("where, needle", [
    ("/proc/autopeft-export", "cannot write --output /proc/autopeft-export"),
    ("/sys/autopeft-export", "cannot write --output /sys/autopeft-export"),  # read-only
    ("{file}/sub", "a file stands where a folder is needed"),
    ("{dangling}", "is a symbolic link"),
    ("{full}", "exists and is not an empty folder"),
])
def test_unwritable_outputs_are_one_line(tmp_path, where, needle):
    db, _ = _study(tmp_path)
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    out = where.format(file=tmp_path / "file", dangling=tmp_path / "dangling",
                       full=tmp_path / "full")
    _one_line(_export(db, out), needle)
    assert not (tmp_path / "nowhere").exists() and (tmp_path / "file").read_text() == "x"
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_a_write_failure_leaves_nothing_and_the_retry_works(tmp_path):
    db, folder = _study(tmp_path)
    out = tmp_path / "exports" / "best"
    (tmp_path / "exports").mkdir()
    _one_line(_export(db, out, fsize=64 * 1024), "File too large")
    assert list((tmp_path / "exports").iterdir()) == []  # no partial folder, no temp folder
    run = _export(db, out)
    assert run.returncode == 0, run.stderr
    assert (out / "adapter_model.safetensors").read_bytes() == (
        folder / "adapter_model.safetensors").read_bytes()


def test_pruning_deletes_only_inside_the_artifacts_folder(tmp_path):
    from autopeft.artifacts import prune

    root = tmp_path / "artifacts" / "s"
    (root / "trial-1").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (root / "escape").symlink_to(victim)
    refused = prune(root, [str(root / "trial-1"), str(victim), str(root / "escape"),
                           str(root), str(root / ".." / "s" / ".." / "..")])
    assert not (root / "trial-1").exists()
    assert victim.is_dir() and root.is_dir()
    assert refused == [str(victim), str(root / "escape"), str(root),
                       str(root / ".." / "s" / ".." / "..")]
