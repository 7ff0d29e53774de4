"""The shipped method spaces (survey, autopeft) load against the real registry and build."""

from __future__ import annotations

import pytest

from autopeft.methods import ModelInfo, get_method, list_methods
from autopeft.space import load_space
from autopeft.testing import tiny_bert, tiny_t5

# Width 128 so that the survey's sizes fit (Compacter: 128 / 32 = 4, divisible by phm_dim 4).
WIDE_T5 = {"d_model": 128, "d_kv": 32, "d_ff": 256}
WIDE_BERT = {"hidden_size": 128, "intermediate_size": 256}


def fixed_params(method_space) -> dict:
    return {k: spec.fixed_value() for k, spec in method_space.params.items()
            if spec.kind == "fixed"}


def test_survey_has_every_method_but_autopeft_on_the_lr_grid():
    space = load_space("survey")
    # The survey's comparison (+ BitFit, VeRA), not every registered method: peft_all.yaml
    # holds the others.
    survey = {"full", "lora", "lokr", "vera", "ia3", "prompt_tuning", "prefix_tuning",
              "ln_tuning", "bitfit", "houlsby", "pfeiffer", "parallel", "compacter",
              "compacter++", "mam", "unipelt"}
    assert set(space.methods) == survey <= {m.name for m in list_methods()}
    for name, ms in space.methods.items():
        assert ms.learning_rate.values == [1e-3, 1e-4, 5e-5], name
        assert all(spec.kind == "fixed" for spec in ms.params.values()), name


@pytest.mark.parametrize("arch", ["t5", "bert"])
def test_survey_settings_build(arch):
    space = load_space("survey")
    for name, ms in space.methods.items():
        model = tiny_t5(**WIDE_T5) if arch == "t5" else tiny_bert(**WIDE_BERT)
        info = ModelInfo.from_config(model.config)
        method = get_method(name)
        if method.check(model, info):
            assert (arch, name) == ("t5", "bitfit")
            continue
        method.build(model, fixed_params(ms), info)


@pytest.mark.parametrize("layers", [6, 12])
def test_autopeft_masks_fit_common_depths(layers):
    space = load_space("autopeft")
    ms = space.methods["autopeft"]
    masks = ms.params["layers"].values
    assert len(masks) == len(set(masks)) >= 8
    for mask in masks:
        model = tiny_bert(num_hidden_layers=layers)
        params = {**fixed_params(ms), "layers": mask, "serial_dim": 3, "parallel_dim": 0,
                  "prefix_length": 0}
        adapted_model = get_method("autopeft").build(model, params,
                                                     ModelInfo.from_config(model.config))
        adapted = {int(n.split("layer.")[1].split(".")[0])
                   for n, _ in adapted_model.named_parameters() if "adapter_bottleneck" in n}
        per_bit = layers // 6
        bits = mask.removeprefix("mask:")
        assert adapted == {i for i in range(layers) if bits[i // per_bit] == "1"}, mask


def test_peft_all_has_every_peft_method():
    space = load_space("peft_all")
    assert set(space.methods) == {m.name for m in list_methods()} - {"full"}


@pytest.mark.parametrize("arch", ["t5", "bert"])
def test_peft_all_choices_build(arch):
    """Each choice of each parameter (the others at their first choice) builds."""
    space = load_space("peft_all")
    for name, ms in space.methods.items():
        first = {k: spec.fixed_value() if spec.kind == "fixed" else spec.values[0]
                 for k, spec in ms.params.items()}
        variants = [first] + [{**first, k: v} for k, spec in ms.params.items()
                              if spec.kind != "fixed" for v in spec.values[1:]]
        for params in variants:
            # Six layers: AutoPEFT's masks are sized for 6/12/24-layer models.
            model = (tiny_t5(**WIDE_T5, num_layers=6, num_decoder_layers=6) if arch == "t5"
                     else tiny_bert(**WIDE_BERT, num_hidden_layers=6))
            info = ModelInfo.from_config(model.config)
            if get_method(name).check(model, info):
                continue
            get_method(name).build(model, params, info)
