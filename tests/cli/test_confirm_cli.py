"""`autopeft confirm` refuses bad input in one line, exit code 2, writing nothing."""

from __future__ import annotations

import subprocess
import sys


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "autopeft.cli.main", *args],
                          capture_output=True, text=True, timeout=300)


def test_unknown_study_and_bad_seeds(tmp_path):
    db = f"sqlite:///{tmp_path}/c.db"
    run = _cli("confirm", "--study", "nope", "--storage", db)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "nope" in run.stderr
    assert "Traceback" not in run.stderr
    bad = _cli("confirm", "--study", "nope", "--seeds", "0", "--storage", db)
    assert bad.returncode == 2 and "--seeds" in bad.stderr and "positive" in bad.stderr
    flag = _cli("search", "--task", "glue/sst2", "--model", "m", "--confirm-seeds", "-1",
                "--storage", db)
    assert flag.returncode == 2 and "--confirm-seeds" in flag.stderr
