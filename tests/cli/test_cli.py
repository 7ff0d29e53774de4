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
