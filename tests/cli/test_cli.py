"""CLI behaviour that needs no training: light --help, one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "autopeft.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from autopeft.cli.main import main\n"
        "for argv in (['--help'], ['search', '--help'], ['front', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = {'torch', 'ray', 'transformers', 'peft', 'pynvml', 'optuna', 'datasets'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["search", "--task", "glue/nope", "--model", "x"], "unknown task"),
        (["search", "--task", "glue/sst2", "--model", "./no/such/model"], "does not exist"),
        (["search", "--task", "glue/sst2", "--model", "m", "--trials", "0"], "must be positive"),
        (["search", "--task", "glue/sst2", "--model", "m", "--epochs", "-1"], "must be positive"),
        (["search", "--task", "glue/sst2", "--model", "m", "--space", "/no/space.yaml"], "space"),
        (["search", "--task", "glue/sst2", "--model", "m", "--sampler", "cmaes"], "invalid choice"),
        (["search", "--model", "m"], "--task"),
        (["front", "--study", "nope", "--storage", "notaurl"], "storage URL"),
        (["trials", "--study", "nope", "--storage", "sqlite:///{tmp}/x.db"], "no study named"),
        (["front", "--study", "nope", "--storage",
          "postgresql+psycopg2://u:s3cret@127.0.0.1:1/db"], "cannot open storage"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    run = _cli(*args, "--storage", f"sqlite:///{tmp_path}/s.db") if "--storage" not in args \
        else _cli(*args)
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert needle.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in run.stderr and "s3cret" not in run.stderr
    if (tmp_path / "s.db").exists():  # bad input writes no study
        from autopeft.store import Store

        assert Store(f"sqlite:///{tmp_path}/s.db").list_studies() == []
