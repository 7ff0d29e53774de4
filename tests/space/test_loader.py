"""Loading space YAML: shipped files, registry checks and one-line errors that name the key."""

from __future__ import annotations

import json
import textwrap

import pytest

import autopeft.methods.base as base
from autopeft.errors import AutopeftError
from autopeft.methods.base import Method
from autopeft.space import (
    SearchSpace,
    list_spaces,
    load_space,
    space_from_dict,
    spaces_dir,
)
from autopeft.space.loader import MODULE_GROUPS

FIRST_SET = {"full", "lora", "ia3", "prefix_tuning", "prompt_tuning", "ln_tuning", "bitfit"}
SHIPPED = ["autopeft", "default", "lora", "peft_all", "quick", "survey"]



def _require_real_registry():
    """The real registry must hold the first set (a failure, never a skip)."""
    names = {m.name for m in base.list_methods()}
    assert FIRST_SET <= names, sorted(FIRST_SET - names)


def _write(tmp_path, text, name="x.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _error(tmp_path, text) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(AutopeftError) as info:
        load_space(path)
    msg = str(info.value)
    assert msg.startswith(f"search space {path}: "), msg
    assert "\n" not in msg
    return msg[len(f"search space {path}: "):]


def test_shipped_spaces_are_listed():
    assert set(SHIPPED) <= set(list_spaces())
    assert (spaces_dir() / "default.yaml").is_file()


# the fake registry holds the first-set methods only: survey/autopeft use later ones
@pytest.mark.parametrize("name", ["default", "lora", "quick"])
def test_shipped_space_loads_with_fake_registry(fake_registry, name):
    space = load_space(name)
    assert space.name == name
    assert space.source == str(spaces_dir() / f"{name}.yaml")
    assert all(ms.learning_rate is not None for ms in space.methods.values())
    assert SearchSpace.from_dict(json.loads(json.dumps(space.to_dict()))) == space


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_space_loads_with_real_registry(name):
    _require_real_registry()
    space = load_space(name)
    assert space.name == name


def test_default_has_every_first_set_method(fake_registry):
    space = load_space("default")
    assert set(space.methods) == FIRST_SET
    full, lora = space.methods["full"].learning_rate, space.methods["lora"].learning_rate
    assert (full.low, full.high, full.log) == (1e-5, 1e-4, True)
    assert lora.log and lora.low >= 1e-4 and lora.high <= 1e-2
    # bitfit omits its learning rate: it becomes the method's lr_range, log-uniform.
    bitfit = space.methods["bitfit"].learning_rate
    assert (bitfit.low, bitfit.high, bitfit.log) == (2e-4, 5e-3, True)


def test_quick_and_lora_contents(fake_registry):
    quick = load_space("quick")
    assert set(quick.methods) == {"lora", "ia3", "bitfit", "ln_tuning"}
    lora_lr = quick.methods["lora"].learning_rate
    assert 5e-4 <= lora_lr.low < lora_lr.high <= 3e-3
    lora = load_space("lora")
    assert list(lora.methods) == ["lora"]
    assert {"r", "lora_alpha", "lora_dropout", "target_modules", "layers", "use_rslora"} <= set(
        lora.methods["lora"].params
    )


def test_load_by_path_and_bare_floats(fake_registry, tmp_path):
    path = _write(tmp_path, """\
        name: mine
        methods:
          lora:
            learning_rate: {choices: [1e-3, 1e-4, 5e-5]}
            params:
              lora_dropout: {value: 0}
          bitfit:
            learning_rate: {low: 1e-4, high: 1e-2, log: true}
        """)
    space = load_space(str(path))
    assert space.description == ""
    assert space.methods["lora"].learning_rate.values == [1e-3, 1e-4, 5e-5]
    assert space.methods["bitfit"].learning_rate.kind == "float"
    assert load_space(path) == space


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("name: x\nmethods: {lora: {params: {rank: {value: 8}}}}\n",
         "methods.lora.params.rank: unknown parameter for lora (known: r, lora_alpha, "
         "lora_dropout, target_modules, layers, use_dora, use_rslora)"),
        ("name: x\nmethods: {lora: {learning_rate: {low: 1.0e-2, high: 1.0e-4}}}\n",
         "methods.lora.learning_rate: low must be < high (got low=0.01, high=0.0001)"),
        ("name: x\nmethods: {lora: {learning_rate: {low: 0.0, high: 1.0e-2, log: true}}}\n",
         "methods.lora.learning_rate: log range needs low > 0 (got low=0.0)"),
        ("name: x\nmethods: {lora: {}}\nseed: 3\n",
         "seed: unknown top-level key (known: name, description, methods)"),
        ("name: x\nmethods: {loar: {}}\n", "methods.loar: unknown method 'loar'; known methods:"),
        ("name: x\nmethods: {}\n", "methods: no methods; list at least one"),
        ("name: x\n", "methods: no methods; list at least one"),
        ("methods: {lora: {}}\n", "name: missing"),
        ("name: x\nmethods: {lora: {params: {r: {choices: []}}}}\n",
         "methods.lora.params.r: choices is empty"),
        ("name: x\nmethods: {lora: {params: {r: {low: 4, high: 16, lg: true}}}}\n",
         "methods.lora.params.r.lg: unknown key (known: value, choices, low, high, log, step)"),
        ("name: x\nmethods: {lora: {lr: {value: 1.0e-3}}}\n",
         "methods.lora.lr: unknown key (known: learning_rate, params)"),
        ("name: x\nmethods: {lora: {params: {r: 8}}}\n",
         "methods.lora.params.r: expected a mapping"),
        ("name: x\nmethods: [lora]\n", "methods: expected a mapping of method name"),
        ("- lora\n", "expected a mapping with keys name, description, methods"),
        ("name: x\nmethods: {lora: {params: {r: {choices: [4, eight]}}}}\n",
         "methods.lora.params.r: expects an int (default 8), got 'eight'"),
        ("name: x\nmethods: {lora: {params: {r: {low: 4.0, high: 16.0}}}}\n",
         "methods.lora.params.r: expects an int (default 8); use int bounds"),
        ("name: x\nmethods: {lora: {params: {lora_dropout: {low: 0, high: 1}}}}\n",
         "methods.lora.params.lora_dropout: expects a float (default 0.0)"),
        ("name: x\nmethods: {lora: {params: {use_rslora: {choices: [0, 1]}}}}\n",
         "methods.lora.params.use_rslora: expects true/false"),
        ("name: x\nmethods: {lora: {params: {layers: {low: 0, high: 5}}}}\n",
         "methods.lora.params.layers: a range needs a numeric parameter"),
        ("name: x\nmethods: {lora: {params: {target_modules: {choices: [[q, ffn-in]]}}}}\n",
         "methods.lora.params.target_modules: bad module group 'ffn-in': use q, k, v, o, "
         "ffn_in, ffn_out or a module name inside a layer"),
        ("name: x\nmethods: {lora: {params: {target_modules: {value: []}}}}\n",
         "methods.lora.params.target_modules: expects a non-empty list of module groups"),
        ("name: x\nmethods: {ia3: {params: {feedforward_modules: {value: [o, o]}}}}\n",
         "methods.ia3.params.feedforward_modules: module group listed twice"),
        ("name: x\nmethods: {lora: {params: {layers: {choices: [all, top_half]}}}}\n",
         "methods.lora.params.layers: bad layers 'top_half'"),
        ("name: x\nmethods: {lora: {learning_rate: {low: 1, high: 2}}}\n",
         "methods.lora.learning_rate: range bounds must be floats"),
    ],
)
def test_validation_errors_name_file_and_key(fake_registry, tmp_path, yaml_text, expected):
    assert _error(tmp_path, yaml_text).startswith(expected)


@pytest.mark.parametrize(
    ("layers", "ok"),
    [("all", True), ("upper_half", True), ("lower_half", True), ("2-5", True), ("3-3", True),
     ("2 - 5", True), ([0, 1, 11], True), ([3, 3], True), ("", False), ("2-", False),
     ("6-2", False), ("top", False), ([], False), ([True], False), ([0, -1], False),
     ([1.0], False)],
)
def test_layer_values(fake_registry, layers, ok):
    d = {"name": "x", "methods": {"ln_tuning": {"params": {"layers": {"value": layers}}}}}
    if ok:
        assert space_from_dict(d).methods["ln_tuning"].params["layers"].fixed_value() == layers
    else:
        with pytest.raises(AutopeftError, match=r"methods.ln_tuning.params.layers: bad layers"):
            space_from_dict(d)


@pytest.mark.parametrize(
    ("param", "value", "ok"),
    [("target_modules", ["q", "v"], True), ("target_modules", "q", True),
     ("target_modules", ["query", "DenseReluDense.wi"], True), ("target_modules", [], False),
     ("target_modules", ["q", 3], False), ("target_modules", ["q", ""], False),
     ("target_modules", ["q.", "v"], False), ("feedforward_modules", [], True),
     ("feedforward_modules", ["ffn_out"], True), ("feedforward_modules", ["ffn out"], False)],
)
def test_module_group_values(fake_registry, param, value, ok):
    d = {"name": "x", "methods": {"ia3": {"params": {param: {"value": value}}}}}
    if ok:
        assert space_from_dict(d).methods["ia3"].params[param].fixed_value() == value
    else:
        with pytest.raises(AutopeftError, match=f"methods.ia3.params.{param}: "):
            space_from_dict(d)


def test_module_groups_match_placement():
    placement = pytest.importorskip("autopeft.methods.placement")
    assert MODULE_GROUPS == tuple(placement.GROUPS)


def test_malformed_yaml_reports_line(fake_registry, tmp_path):
    msg = _error(tmp_path, "name: x\nmethods:\n  lora: {params: [\n")
    assert msg.startswith("invalid YAML at line ")
    msg = _error(tmp_path, "name: x\nmethods:\n  lora:\n    learning_rate: {value: 1.0e-3\n")
    assert msg.startswith("invalid YAML at line 5")


def test_duplicate_key_is_an_error(fake_registry, tmp_path):
    msg = _error(tmp_path, "name: x\nmethods:\n  lora: {}\n  lora: {}\n")
    assert msg == "invalid YAML at line 4, column 3: duplicate key 'lora'"


def test_empty_file(fake_registry, tmp_path):
    assert _error(tmp_path, "# nothing\n") == "file is empty"


def test_missing_file_and_unknown_name(fake_registry, tmp_path):
    shipped = "autopeft, default, lora, peft_all, quick, survey"
    with pytest.raises(AutopeftError, match=r"search space file not found: .*nope\.yaml "
                                            rf"\(shipped spaces: {shipped}"):
        load_space(tmp_path / "nope.yaml")
    with pytest.raises(AutopeftError, match="search space file not found: nope.yml"):
        load_space("nope.yml")
    with pytest.raises(AutopeftError, match=rf"unknown search space 'nope'.*{shipped}"):
        load_space("nope")


def test_space_from_dict_fills_learning_rate_and_checks_registry(fake_registry):
    space = space_from_dict({"name": "d", "methods": {"prompt_tuning": None}})
    assert space.source == "<dict>"
    lr = space.methods["prompt_tuning"].learning_rate
    assert (lr.low, lr.high, lr.log) == (1e-3, 1e-1, True)
    with pytest.raises(AutopeftError, match=r"^search space <dict>: methods.bogus: unknown method"):
        space_from_dict({"name": "d", "methods": {"bogus": {}}})


def test_space_from_dict_accepts_to_dict_output(fake_registry):
    # The Ray trainable rebuilds the space from to_dict() in each worker.
    space = load_space("quick").restrict(["lora", "bitfit"])
    d = json.loads(json.dumps(space.to_dict()))
    assert space_from_dict(d) == space
    assert space_from_dict(d).source == space.source
    assert space_from_dict(d, source="other").source == "other"
    assert d["source"] == space.source  # the caller's dict is not changed


def test_space_file_may_not_say_source(fake_registry, tmp_path):
    assert _error(tmp_path, "name: x\nsource: y\nmethods: {lora: {}}\n").startswith(
        "source: unknown top-level key"
    )


def test_bad_method_lr_range_is_reported(fake_registry, monkeypatch):
    fake_registry["full"] = Method("full", "", {}, apply=lambda *a: None, lr_range=(0.0, 1e-4))
    with pytest.raises(AutopeftError, match=r"methods.full.learning_rate: method's lr_range"):
        space_from_dict({"name": "d", "methods": {"full": {}}})
