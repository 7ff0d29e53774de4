"""The limited YAML reader: bombs, recursion, depth, size and encoding are one-line errors."""

from __future__ import annotations

import pytest

from autopeft.errors import AutopeftError, excerpt
from autopeft.yamlio import MAX_BYTES, parse_yaml, read_yaml_file


def bomb(levels: int) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_is_refused_before_it_is_built():
    text = bomb(9)  # 9**9 = 387 million strings once expanded, from 432 bytes
    assert len(text) < 500
    with pytest.raises(AutopeftError, match="more than 100,000 values once its aliases"):
        parse_yaml(text, "x.yaml")


def test_a_small_bomb_loads_and_prints_short():
    value = parse_yaml(bomb(4), "x.yaml")["l3"]  # 6,561 strings: allowed
    assert len(excerpt(value)) <= 60


@pytest.mark.parametrize("text, needle", [
    ("a: &a [1, *a]\n", "recursive"),
    ("a: " + "[" * 40 + "]" * 40 + "\n", "nested more than 32"),
    ("".join(f"k{i}: &a{i} 1\n" for i in range(101)) + "x: [" +
     ", ".join(f"*a{i}" for i in range(101)) + "]\n", "more than 100 aliases"),
    ("a: 1\na: 2\n", "duplicate key 'a'"),
    ("a: [1\n", "line 2"),
])
def test_malformed_documents_are_one_line(text, needle):
    with pytest.raises(AutopeftError) as err:
        parse_yaml(text, "x.yaml")
    assert needle in str(err.value) and str(err.value).startswith("x.yaml: invalid YAML")


def test_floats_follow_yaml_1_2():
    assert parse_yaml("lr: 1e-4\n", "x") == {"lr": 1e-4}


def test_files_too_large_or_not_utf8(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * MAX_BYTES + "\n")
    with pytest.raises(AutopeftError, match="larger than 1024 KiB"):
        read_yaml_file(big, "space big.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(AutopeftError, match=r"not UTF-8 text \(byte 9 is 0xe9\)"):
        read_yaml_file(latin, "space latin.yaml")
    with pytest.raises(AutopeftError, match="cannot read"):
        read_yaml_file(tmp_path, "a folder")


def test_excerpt_cuts_every_kind_of_value():
    assert "..." in excerpt("x" * 1000) and len(excerpt("x" * 1000)) <= 60
    assert excerpt("cuda") == "'cuda'" and excerpt(3.5) == "3.5"
    assert excerpt("a.b.c" * 100, 20, quote=False) == ("a.b.c" * 100)[:17] + "..."
    assert excerpt("short", quote=False) == "short"
    nested: list = ["lol"] * 9
    for _ in range(30):  # 9**30 elements if expanded: reprlib never expands them
        nested = [nested] * 9
    assert len(excerpt(nested)) <= 60
