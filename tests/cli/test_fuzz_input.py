"""Fuzzing every command's arguments, and the YAML of spaces and profiles (hypothesis).

Whatever the input, a command ends with exit 0 or 2 (one line on stderr), never with a
traceback, and a command that exits 2 has written nothing to the store. The CLI runs in this
process (``main(argv)``) so that an example costs milliseconds; a search stops where its
pre-flight ends: Ray's start is replaced by an exception the test catches, so nothing trains.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from autopeft.errors import AutopeftError

FUZZ = settings(max_examples=int(os.environ.get("AUTOPEFT_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


class PreflightPassed(BaseException):
    """Raised where a search would start Ray: its input passed every check."""


# -- the world the commands see -------------------------------------------------------------
@pytest.fixture
def world(tmp_path, shared_dir, monkeypatch):
    """Files the fuzzed arguments point at, a store, and Ray / the job server stubbed out."""
    import autopeft.controller.preflight as preflight
    import autopeft.controller.ray_env as ray_env
    import autopeft.controller.submit as submit

    def stop(*args, **kwargs):
        raise PreflightPassed

    monkeypatch.setattr(ray_env, "init_ray", stop)
    # One memory prediction costs seconds here: the planner has its own tests, and the
    # profile (file, name or auto) is still loaded and checked by the pre-flight.
    monkeypatch.setattr(preflight, "check_something_fits", lambda *args, **kwargs: None)
    monkeypatch.setattr(submit, "_client", stop)
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", stop)  # serve: everything up to listening
    monkeypatch.chdir(tmp_path)  # plot's default output, relative -o and --log-dir land here
    db = f"sqlite:///{tmp_path}/fuzz.db"
    monkeypatch.setenv("AUTOPEFT_STORAGE", db)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    minilm = shared_dir / "models" / "all-MiniLM-L6-v2"
    no_tok = tmp_path / "no_tok"
    no_tok.mkdir()
    for name in ("config.json", "model.safetensors"):
        (no_tok / name).symlink_to(minilm / name)
    (tmp_path / "a_file").write_text("x\n")
    (tmp_path / "space.yaml").write_text("name: s\nmethods:\n  lora: {}\n  ia3: {}\n")
    (tmp_path / "profile.yaml").write_text("device: cpu\nmemory_bytes: 8 GiB\n"
                                           "usable_fraction: 0.5\n")
    from autopeft.store import Store

    store = Store(db)
    store.create_study("kept", task="glue/rte", model="m", space_name="quick", space={},
                       budget={}, hardware={}, settings={}, objectives=[("accuracy", "maximize")])
    return {"tmp": tmp_path, "db": db, "shared": shared_dir, "minilm": str(minilm),
            "no_tok": str(no_tok)}


def snapshot(db: str) -> list:
    from autopeft.store import Store

    store = Store(db)
    return sorted((s.name, s.status, s.n_trials, repr(s.settings)) for s in store.list_studies())


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (exit code, stdout, stderr)."""
    from autopeft.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help, --version, usage errors
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return code, out.getvalue(), err.getvalue()


def check(world: dict, argv: list[str]) -> str:
    """Run one command line and check the contract; returns how it ended."""
    before = snapshot(world["db"])
    try:
        code, _, err = run_cli(argv)
    except PreflightPassed:
        assert snapshot(world["db"]) == before, argv  # the pre-flight writes nothing
        return "preflight passed"
    assert code in (0, 2), (argv, code, err[-2000:])
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1, (argv, err[-2000:])
        assert len(lines[0]) < 1000, (argv, lines[0][:300])
        assert snapshot(world["db"]) == before, argv
    return f"exit {code}"


# -- argument strategies, from the parser itself ----------------------------------------------
def _commands() -> dict[str, argparse.ArgumentParser]:
    from autopeft.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


JUNK = st.one_of(st.text(max_size=24), st.sampled_from(
    ["", "-", "--", "0", "-1", "1e309", "inf", "nan", "-inf", "2e-324", str(2**64), "é", "a b",
     "../..", "/", "~", "%s", "{}", "[", "*a", "&a [*a]", "\x00"]))
NUMBERS = st.one_of(st.integers(-3, 5).map(str), st.integers(-(2**70), 2**70).map(str),
                    st.sampled_from(["0.5", "1e3", "inf", "nan", "-0", "3.0", "x", ""]))


def value_for(flag: str, action: argparse.Action, world: dict) -> st.SearchStrategy[str]:
    tmp, shared = world["tmp"], world["shared"]
    known = {
        "--task": ["glue/rte", "glue/sst2", "rte", "glue/nope", "superglue/boolq"],
        "--model": [world["minilm"], world["no_tok"], str(tmp / "a_file"), "./no/such",
                    "google/t5-nope", str(shared / "models" / "configs" / "t5-small")],
        "--space": ["quick", "default", str(tmp / "space.yaml"), "nosuch", str(tmp / "a_file"),
                    str(tmp / "fuzzed.yaml")],
        "--profile": ["none", "cpu", "auto", "a100-80gb", str(tmp / "profile.yaml"),
                      str(tmp / "fuzzed.yaml"), "nosuch"],
        "--data-dir": [str(shared / "data"), str(tmp), str(tmp / "a_file")],
        "--artifacts-dir": [str(tmp / "art"), str(tmp / "a_file"), str(tmp / "a_file" / "x")],
        "--study": ["kept", "fresh", "a b", "aé٣", "étude", "x" * 200],
        "--storage": [world["db"], "notaurl", "mysql+nosuchdriver://u@h/db"],
        "--ray-address": ["nohostport", "127.0.0.1:1"],
        "--method": ["lora", "ia3", "full", "bitfit", "prefix_tuning", "nosuch"],
        "--param": ["r=8", "target_modules=q,v", "layers=10-20", "target_modules=zzz", "r=x",
                    "=", "r", "layers=[&a [1, *a]]", "r=[[[[[[[[[[1]]]]]]]]]]"],
        "--format": ["table", "json", "csv"],
        "--output": [str(tmp / "out"), str(tmp / "a_file")],
        "--trial": ["0", "1", "-1", "x"],
        "--env": ["A=1", "=1", "A"],
        "--host": ["127.0.0.1", "0.0.0.0", "::1", "no.such.host"],
        "--token-file": [str(tmp / "a_file"), str(tmp / "no_token"), str(tmp)],
        "--log-dir": [str(tmp / "logs"), str(tmp / "a_file")],
    }
    options: list[st.SearchStrategy[str]] = [JUNK]
    if flag in known:
        options.insert(0, st.sampled_from(known[flag]))
    if action.choices:
        options.insert(0, st.sampled_from(list(action.choices)))
    if action.type is not None and flag not in known:
        options.insert(0, NUMBERS)
    return st.one_of(*options)


@st.composite
def command_line(draw, world: dict, command: str) -> list[str]:
    parser = _commands()[command]
    flags = {a.option_strings[-1]: a for a in parser._actions
             if a.option_strings and a.option_strings[-1] not in ("--help",)}
    required = [f for f, a in flags.items() if a.required]
    chosen = draw(st.lists(st.sampled_from(sorted(flags)), max_size=6))
    if draw(st.booleans()) or not chosen:  # mostly complete command lines, sometimes not
        chosen = required + chosen
    argv = [command]
    for flag in chosen:
        action = flags[flag]
        argv.append(flag)
        if action.nargs != 0:
            argv.append(draw(value_for(flag, action, world)))
    return argv


# -- the tests --------------------------------------------------------------------------------
QUICK_SEARCH = ["--train-samples", "16", "--eval-samples", "8"]  # last: they win


def _fuzzed_yaml() -> st.SearchStrategy[str]:
    """YAML-ish text: real keys and values, aliases, nesting, and junk."""
    keys = st.sampled_from(["name", "description", "methods", "lora", "ia3", "params", "r",
                            "choices", "value", "low", "high", "log", "step", "learning_rate",
                            "target_modules", "layers", "device", "memory_bytes",
                            "usable_fraction", "usable_bytes", "bf16", "fp16", "gpu_count",
                            "trials_per_device", "match_names", "peak_tflops", "&a", "*a"])
    scalars = st.one_of(st.integers(-10, 10**12), st.floats(allow_nan=True), st.booleans(),
                        st.none(), st.text(max_size=12),
                        st.sampled_from(["cpu", "cuda", "8 GiB", "auto", "10-20", "all", "1e-4",
                                         "[q, v]", "*a", "&a x", "{", "]"]))
    tree = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)

    def dump(value) -> str:
        import yaml

        return yaml.safe_dump(value, default_flow_style=None, allow_unicode=True)

    return st.one_of(tree.map(dump), st.text(max_size=200),
                     st.builds(lambda a, b: a + b, tree.map(dump), st.text(max_size=40)))


@FUZZ
@given(data=st.data())
def test_fuzzed_space_and_profile_files(world, data):
    from autopeft.hardware import load_profile
    from autopeft.space import load_space

    text = data.draw(_fuzzed_yaml())
    path = Path(world["tmp"]) / "fuzzed.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if data.draw(st.booleans())
                     else text.encode("latin-1", "replace"))
    for load in (load_space, load_profile):
        try:
            load(str(path))
        except AutopeftError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 1000
    event(f"profile: {check(world, ['profile', '--profile', str(path)])}")


COMMANDS = ("estimate", "export", "front", "trials", "studies", "profile", "submit", "plot",
            "confirm", "serve")


@FUZZ
@given(data=st.data())
def test_fuzzed_command_lines(world, data):
    command = data.draw(st.sampled_from(COMMANDS))
    event(f"{command}: {check(world, data.draw(command_line(world, command)))}")


@settings(FUZZ, max_examples=max(5, FUZZ.max_examples // 5))
@given(data=st.data())
def test_fuzzed_search_command_lines(world, data):
    """Search and submit parse the same settings; search runs its pre-flight (never Ray)."""
    argv = data.draw(command_line(world, "search"))
    event(f"search: {check(world, argv + QUICK_SEARCH)}")


def test_every_command_is_fuzzed():
    assert set(_commands()) == {*COMMANDS, "search"}
