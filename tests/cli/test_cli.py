"""CLI behaviour that needs no training: light --help, one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys


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


def test_every_flag_has_help_text():
    import argparse

    from autopeft.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {'/'.join(a.option_strings)}" for name, p in sub.choices.items()
               for a in p._actions if a.option_strings and not a.help]
    assert missing == []
    assert "`autopeft studies` lists them" in sub.choices["front"].format_help()


def test_one_trial_shows_every_field_and_its_traceback(tmp_path):
    import subprocess
    import sys

    from autopeft.store import Store

    db = f"sqlite:///{tmp_path}/t.db"
    store = Store(db)
    store.create_study("s", task="glue/sst2", model="m", space_name="quick", space={},
                       budget={}, hardware={}, settings={},
                       objectives=[("accuracy", "maximize")])
    trace = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom\n'
    store.add_trial("s", number=3, method="lora", params={"r": 8}, learning_rate=1e-3,
                    status="failed", reason="ValueError: boom",
                    extra={"traceback": trace, "node_id": "n1"})

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "autopeft.cli.main", "trials", "--study",
                               "s", "--storage", db, *args],
                              capture_output=True, text=True, timeout=120)

    table = cli("--trial", "3")
    assert table.returncode == 0, table.stderr
    assert "Trial 3 of s" in table.stdout and "ValueError: boom" in table.stdout
    assert table.stdout.rstrip().endswith("traceback:\n" + trace.rstrip())
    assert '"node_id":"n1"' in table.stdout and '"traceback"' not in table.stdout
    as_json = cli("--trial", "3", "-f", "json")
    import json

    (row,) = json.loads(as_json.stdout)
    assert row["number"] == 3 and row["extra"]["traceback"] == trace
    missing = cli("--trial", "4")
    assert missing.returncode == 2 and "has no trial 4" in missing.stderr
