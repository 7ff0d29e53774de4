"""Peak-memory predictions from configs: breakdown, monotonicity, errors, ``fits``.

Predictions run on fake tensors and take well under a second on the tiny models of
:mod:`autopeft.testing`; ``test_tracker.py`` checks them against real CPU training steps.
"""

from __future__ import annotations

import pytest

from autopeft.errors import AutopeftError, MethodNotApplicable
from autopeft.hardware import Profile
from autopeft.memory import MemoryPrediction, fits, predict_peak_memory
from autopeft.methods import base
from autopeft.testing import tiny_bert_config, tiny_t5_config

CONFIGS = {"t5": tiny_t5_config, "bert": tiny_bert_config}


def predict(kind: str, method: str = "lora", params: dict | None = None, *,
            config_overrides: dict | None = None, **kw):
    kw.setdefault("batch_size", 2)
    kw.setdefault("seq_len", 8)
    kw.setdefault("device", "cpu")
    return predict_peak_memory(CONFIGS[kind](**(config_overrides or {})), method, params, **kw)


def parts(p: MemoryPrediction) -> int:
    return p.weights + p.trainable_state + p.activations + p.temporaries


@pytest.mark.parametrize("kind", ["t5", "bert"])
@pytest.mark.parametrize("method", ["lora", "ia3", "prompt_tuning", "full"])
def test_peak_grows_with_batch_size_and_sequence_length(kind, method):
    small = predict(kind, method, batch_size=2, seq_len=8).total_bytes
    assert predict(kind, method, batch_size=4, seq_len=8).total_bytes > small
    assert predict(kind, method, batch_size=2, seq_len=16).total_bytes > small


def test_breakdown_of_lora_in_fp32_with_adamw():
    p = predict("bert", "lora", batch_size=4, seq_len=16)
    d = p.details
    n, tensors = d["trainable_params"], 2 * 4 + 2  # A, B of q and v in 2 layers; head w, b
    assert n > 0 and p.total_bytes == parts(p) and p.method == "lora"
    # 4 bytes of parameter + 4 of gradient + 8 of AdamW moments per parameter, and
    # AdamW's 4-byte step counter per tensor.
    assert d["trainable_param_bytes"] == 4 * n and d["grad_bytes"] == 4 * n
    assert d["optimizer_state_bytes"] == 8 * n + 4 * tensors
    assert d["trainable_footprint"] == 16 * n + 4 * tensors
    # At the peak, part of the gradients may not exist yet; params and moments do.
    assert 12 * n <= p.trainable_state <= d["trainable_footprint"]
    assert p.weights == 4 * (d["total_params"] - n) + bert_buffer_bytes()
    assert p.activations > 0 and d["peak_step"] in (1, 2)


def bert_buffer_bytes() -> int:
    import copy

    from autopeft.memory.step import build_base_model

    model = build_base_model(copy.deepcopy(tiny_bert_config()))
    return sum(b.numel() * b.element_size() for b in model.buffers())


def test_sgd_keeps_no_state_and_full_fine_tuning_freezes_nothing():
    sgd = predict("t5", "lora", optimizer="sgd").details
    assert sgd["optimizer_state_bytes"] == 0
    assert sgd["trainable_footprint"] == 8 * sgd["trainable_params"]
    full = predict("t5", "full")
    assert full.weights == 0  # T5 holds no buffers; every parameter trains
    assert full.details["trainable_params"] == full.details["total_params"]
    assert full.details["trainable_footprint"] >= 16 * full.details["trainable_params"]


def test_method_parameters_change_the_prediction():
    r4 = predict("bert", "lora", {"r": 4})
    r64 = predict("bert", "lora", {"r": 64, "target_modules": ["q", "k", "v", "o"]})
    assert r64.details["trainable_params"] > r4.details["trainable_params"]
    assert r64.total_bytes > r4.total_bytes
    assert r64.details["params"]["r"] == 64


def test_cuda_rounds_to_allocator_blocks_and_uses_foreach_adamw():
    deep = {"num_hidden_layers": 8}  # many parameters, none much larger than the others
    cpu = predict("bert", "full", batch_size=1, seq_len=4, config_overrides=deep)
    cuda = predict("bert", "full", batch_size=1, seq_len=4, config_overrides=deep,
                   device="cuda")
    assert cuda.total_bytes % 512 == 0 and cuda.total_bytes > cpu.total_bytes
    # foreach AdamW holds an intermediate of every parameter at once (the peak moves into
    # the optimizer step); the for-loop one only those of the parameter it is updating.
    assert cuda.details["peak_phase"] == "optimizer"
    assert cuda.temporaries >= cuda.details["trainable_param_bytes"]
    assert cpu.temporaries < cpu.details["trainable_param_bytes"] / 2


def test_mixed_precision_changes_the_activations():
    fp32 = predict("bert", "lora", batch_size=8, seq_len=64, device="cuda")
    bf16 = predict("bert", "lora", batch_size=8, seq_len=64, device="cuda", dtype="bf16")
    assert bf16.details["dtype"] == "bf16" and bf16.weights < fp32.weights
    assert bf16.activations != fp32.activations


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_16_bit_gpu_trials_halve_the_frozen_weights_of_t5_11b(shared_dir, dtype):
    """The GPU dtype policy, predicted: frozen base in 16 bits, trainable state in fp32.

    t5-11b's real widths (d_ff 65536, 128 heads) with one layer per stack so that the trace
    stays quick; every layer halves the same way. The full model: 42.1 GiB of frozen weights
    in fp32, 21.1 GiB in bf16 (``autopeft estimate``).
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(shared_dir / "models/configs/t5-11b")
    config.num_layers = config.num_decoder_layers = 1
    shape = {"batch_size": 1, "seq_len": 8, "target_len": 4, "device": "cuda"}
    fp32 = predict_peak_memory(config, "lora", **shape)
    half = predict_peak_memory(config, "lora", dtype=dtype, **shape)
    assert fp32.weights > 2**30  # the 32k x 1024 embedding and one 1024 x 65536 FFN pair
    assert half.weights == pytest.approx(fp32.weights / 2, rel=1e-4)
    for key in ("trainable_param_bytes", "optimizer_state_bytes", "grad_bytes"):
        assert half.details[key] == fp32.details[key] > 0, key  # fp32 either way
    assert half.total_bytes < 0.6 * fp32.total_bytes


def test_seq2seq_target_length_counts_and_encoders_ignore_it():
    assert predict("t5", target_len=16).total_bytes > predict("t5", target_len=2).total_bytes
    assert predict("bert").details["target_len"] is None


def test_any_registered_method_is_predicted_through_the_registry(monkeypatch):
    def apply(model, params, info):  # train only the first layer's attention output
        for name, p in model.named_parameters():
            p.requires_grad_("layer.0.attention.output" in name or "classifier" in name)
        return model

    method = base.Method("test_partial", "test only", {}, apply)
    monkeypatch.setitem(base._REGISTRY, method.name, method)
    p = predict("bert", "test_partial")
    assert 0 < p.details["trainable_params"] < predict("bert", "full").details["trainable_params"]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"dtype": "fp8"}, "dtype"),
        ({"dtype": "bf16"}, "fp32"),  # device cpu
        ({"optimizer": "lion"}, "optimizer"),
        ({"device": "tpu"}, "device"),
        ({"batch_size": 0}, "batch_size"),
        ({"seq_len": -1}, "seq_len"),
    ],
)
def test_bad_arguments_are_user_errors(kwargs, needle):
    with pytest.raises(AutopeftError, match=needle):
        predict("bert", **kwargs)


def test_unknown_method_or_parameter_and_inapplicable_methods():
    with pytest.raises(AutopeftError, match="unknown method"):
        predict("bert", "nope")
    with pytest.raises(AutopeftError, match="no parameter 'rank'"):
        predict("bert", "lora", {"rank": 4})
    with pytest.raises(MethodNotApplicable):
        predict("t5", "bitfit")


def gpu(usable_bytes: int, trials: int = 1) -> Profile:
    return Profile("tiny", "", "cuda", 2**30, None, usable_bytes, True, True, None, trials)


def test_fits_compares_with_one_trials_share_of_the_budget():
    p = predict("bert", "lora")
    assert not fits(p, gpu(64 * 1024))  # 64 KiB: less than the weights of tiny BERT
    assert not fits(p, gpu(p.total_bytes - 1))
    assert fits(p, gpu(p.total_bytes))
    assert not fits(p, gpu(p.total_bytes, trials=2))
    assert fits(p, gpu(2 * p.total_bytes, trials=2))


def test_prediction_round_trips_as_data():
    d = predict("t5").to_dict()
    assert d["total_bytes"] == d["weights"] + d["trainable_state"] + d["activations"] + (
        d["temporaries"])
    assert d["details"]["device"] == "cpu" and d["details"]["seconds"] >= 0
    with pytest.raises(ValueError):
        MemoryPrediction(10, 1, 2, 3, 5, "lora")


@pytest.mark.parametrize("kind", ["t5", "bert"])
@pytest.mark.parametrize("method", ["loha", "oft", "c3a", "fourierft", "hra", "p_tuning"])
def test_peft_table_methods_are_predicted(kind, method):
    from autopeft.methods import ModelInfo, count_parameters, get_method
    from autopeft.testing import tiny_bert, tiny_t5

    p = predict(kind, method)
    model = (tiny_t5 if kind == "t5" else tiny_bert)()
    built = get_method(method).build(model, None, ModelInfo.from_config(model.config))
    assert p.details["trainable_params"] == count_parameters(built).trainable
    assert p.total_bytes == parts(p) > 0


@pytest.mark.parametrize(
    "method, params, needle",
    [
        ("shira", None, "from the config alone: its initialisation reads"),  # random mask: nonzero
        ("adamss", None, "from the config alone: its initialisation reads"),  # SVD copied out
        ("lora", {"init_lora_weights": "olora"}, "from the config alone: its initialisation reads"),
        ("vblora", None, "fake tensors cannot trace"),  # its inf check sees assumed values
    ],
)
def test_methods_that_read_weight_values_are_user_errors(method, params, needle):
    # The planner runs such trials unplanned (it catches AutopeftError), instead of crashing.
    with pytest.raises(AutopeftError, match=f"method '{method}'.*{needle}"):
        predict("bert", method, params)
