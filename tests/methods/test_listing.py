"""README's methods block is the registry's: a new or renamed method fails here until the
block is regenerated (``python -m autopeft.methods.listing README.md``)."""

from __future__ import annotations

from pathlib import Path

from autopeft.methods import list_methods
from autopeft.methods.listing import current, render
from autopeft.methods.peft_tuners import EXCLUDED

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_methods_block_matches_the_registry():
    assert current(README.read_text()) == render()


def test_block_names_every_method_and_every_exclusion_once():
    block = render()
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    named = [row.split("`")[1] for row in rows]
    assert named[: len(list_methods())] == [m.name for m in list_methods()]
    assert set(EXCLUDED) <= set(named) and len(named) == len(set(named))


def test_missing_markers_are_reported(tmp_path):
    from autopeft.methods.listing import write

    path = tmp_path / "README.md"
    path.write_text("# no block\n")
    try:
        write(path)
    except SystemExit as exc:
        assert "markers not found" in str(exc)
    else:
        raise AssertionError("write() must refuse a README without markers")
