"""`autopeft plot` on a stored study: every format, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autopeft.cli.main import main
from autopeft.store import Store

MiB = 2**20
OBJECTIVES = [("accuracy", "maximize"), ("trainable_params", "minimize"),
              ("peak_memory", "minimize")]
# number, method, status, accuracy, trainable params, peak memory (MiB)
TRIALS = [
    (0, "lora", "completed", 0.80, 300_000, 900),
    (1, "ia3", "completed", 0.74, 20_000, 850),
    (2, "lora", "completed", 0.78, 300_000, 950),
    (3, "full", "completed", 0.79, 22_000_000, 700),
    (4, "lora", "failed", None, 300_000, None),
    (5, "prefix_tuning", "infeasible", None, 10_000, 30_000),
]


def _fill(url: str) -> None:
    with Store(url) as s:
        s.create_study("demo", task="glue/rte", model="minilm", space_name="default", space={},
                       budget={}, hardware={}, settings={}, objectives=OBJECTIVES)
        for number, method, status, acc, params, mem in TRIALS:
            s.add_trial("demo", number=number, method=method, params={}, learning_rate=1e-3,
                        status=status, reason=None if acc else f"{status}: why",
                        primary_metric=acc, metrics={"accuracy": acc},
                        trainable_params=params, total_params=22_700_000,
                        peak_memory_bytes=None if mem is None else mem * MiB)


def test_plot_every_format(store_url, tmp_path, capsys):
    _fill(store_url)
    for name, x, drawn in (("f.png", "trainable_params", 6), ("f.svg", "peak_memory", 5),
                           ("f.html", "trainable_params", 6)):
        out = tmp_path / name
        assert main(["plot", "--study", "demo", "--storage", store_url, "-o", str(out),
                     "--x", x]) == 0
        said = capsys.readouterr().out
        assert f"plotted {drawn} trials of demo (4 with a metric, 3 on the front) to {out}" in said
        assert ("with no peak memory (MiB) are not drawn: #4" in said) == (drawn == 5)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")
    html = (tmp_path / "f.html").read_text()
    for number, method, status, acc, _, _ in TRIALS:
        assert f"trial {number}: {method} ({status})" in html
        if acc is not None:
            assert f"accuracy {acc:.4f}" in html
    # effective parameters (defaults included) in the hover text, not "no parameters"
    assert "lora_alpha=16" in html and "feedforward_modules=ffn_out" in html


def test_default_output_is_named_after_the_study(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    _fill(url)
    monkeypatch.chdir(tmp_path)
    assert main(["plot", "--study", "demo", "--storage", url]) == 0
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "autopeft.cli.main", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, needle", [
    (["--study", "ghost"], "no study named 'ghost'"),
    (["--study", "demo", "--x", "memory"], "invalid choice: 'memory'"),
    (["--study", "demo", "-o", "{tmp}/front.pdf"], "unknown format '.pdf'"),
    (["--study", "demo", "-o", "{tmp}/front"], "unknown format '(no suffix)'"),
    (["--study", "demo", "-o", "{tmp}/no/such/folder/front.png"], "cannot write into"),
    (["--study", "demo", "-o", "{tmp}/s.db/front.png"], "cannot write into"),
    (["--study", "demo", "-o", "{tmp}"], "is a folder"),
    (["--study", "demo", "-o", "/proc/front.png"], "cannot write the plot"),
])
def test_bad_plot_input_is_one_line(tmp_path, args, needle):
    url = f"sqlite:///{tmp_path / 's.db'}"
    _fill(url)
    before = sorted(p.name for p in tmp_path.iterdir())
    run = _cli("plot", "--storage", url, *[a.format(tmp=tmp_path) for a in args])
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
