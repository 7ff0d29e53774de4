"""Every method on a tiny random T5 and a tiny random BERT, against analytic counts.

One parametrised table (``CASES``) drives apply → forward → backward → one AdamW step, and
checks the trainable count against a formula computed from the config alone.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autopeft.errors import AutopeftError, MethodNotApplicable
from autopeft.methods import ModelInfo, count_parameters, get_method, list_methods
from autopeft.methods.peft_tuners import TUNERS
from autopeft.testing import tiny_batch, tiny_bert, tiny_t5

CONFIGS = Path(__file__).resolve().parents[3] / "shared" / "models" / "configs"
GROUPS = ("q", "k", "v", "o", "ffn_in", "ffn_out")


# ---------------------------------------------------------------- analytic counts from config
def linear_shapes(cfg, group: str) -> list[tuple[int, int]]:
    """(in_features, out_features) of every Linear a group covers, from the config alone."""
    if cfg.model_type == "t5":
        h, inner, f = cfg.d_model, cfg.num_heads * cfg.d_kv, cfg.d_ff
        n_attn = cfg.num_layers + 2 * cfg.num_decoder_layers  # decoder: self + cross
        n_ffn = cfg.num_layers + cfg.num_decoder_layers
        gated = 2 if cfg.is_gated_act else 1
        shapes = {
            "q": [(h, inner)] * n_attn,
            "k": [(h, inner)] * n_attn,
            "v": [(h, inner)] * n_attn,
            "o": [(inner, h)] * n_attn,
            "ffn_in": [(h, f)] * (n_ffn * gated),
            "ffn_out": [(f, h)] * n_ffn,
        }
    else:
        h, i, n = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
        shapes = {g: [(h, h)] * n for g in ("q", "k", "v", "o")}
        shapes |= {"ffn_in": [(h, i)] * n, "ffn_out": [(i, h)] * n}
    return shapes[group]


def head(cfg) -> int:
    """The fresh classification head of an encoder; T5 trains text-to-text without one."""
    return 0 if cfg.is_encoder_decoder else cfg.hidden_size * cfg.num_labels + cfg.num_labels


def total_params(cfg) -> int:
    """All parameters of the base model, tied embeddings once."""
    if cfg.model_type == "t5":
        h, inner, f, v = cfg.d_model, cfg.num_heads * cfg.d_kv, cfg.d_ff, cfg.vocab_size
        ffn = h * f * (2 if cfg.is_gated_act else 1) + f * h
        rel = cfg.relative_attention_num_buckets * cfg.num_heads  # block 0 of each stack
        enc = cfg.num_layers * (4 * h * inner + 2 * h + ffn) + rel + h
        dec = cfg.num_decoder_layers * (8 * h * inner + 3 * h + ffn) + rel + h
        # transformers 5 always ties lm_head to the shared embedding for T5.
        return v * h + enc + dec
    h, i, n = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    emb = (cfg.vocab_size + cfg.max_position_embeddings + cfg.type_vocab_size) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    return emb + n * layer + (h * h + h) + head(cfg)


def selected(spec, n: int) -> int:
    """How many of ``n`` layers a spec keeps: ``all`` or a one-bit-per-layer mask."""
    if spec == "all":
        return n
    assert spec.startswith("mask:") and len(spec) == 5 + n, spec
    return spec[5:].count("1")


def sites(cfg, group: str, layers="all") -> int:
    """Modules of a placement group in the layers kept (T5 decoders hold two attentions)."""
    if not cfg.is_encoder_decoder:
        return selected(layers, cfg.num_hidden_layers)
    enc, dec = selected(layers, cfg.num_layers), selected(layers, cfg.num_decoder_layers)
    return {"self.o": enc + dec, "o": enc + 2 * dec, "ffn_out": enc + dec, "ffn": enc + dec,
            "attn:encoder": enc, "attn:decoder": dec, "attn:cross": dec}[group]


def adapter(d: int, m: int, phm: tuple[int, int] | None = None, gated: bool = False) -> int:
    """One bottleneck adapter: down (d -> m) and up (m -> d) with biases, PHM-factored or not."""
    n = 2 * phm[1] * (d + m) + m + d if phm else 2 * d * m + m + d
    return n + (d + 1 if gated else 0)


def prefix(cfg, length: int, width: int, layers="all", gated: bool = False) -> int:
    """Prefix encoders of every location (flat, or an MLP of ``width``) plus gates per module."""
    seq2seq = cfg.is_encoder_decoder
    h = cfg.d_model if seq2seq else cfg.hidden_size
    inner = cfg.num_heads * cfg.d_kv if seq2seq else h
    locations = ("encoder", "decoder", "cross") if seq2seq else ("encoder",)
    n = 0
    for loc in locations:
        kv = sites(cfg, "attn:" + loc, layers) * 2 * inner
        n += length * h + width * h + width + kv * width + kv if width else length * kv
        n += sites(cfg, "attn:" + loc, layers) * (h + 1) if gated else 0  # one gate per module
    return n


def factors(n: int) -> tuple[int, int]:
    """The divisor pair of n closest to its square root, smaller first (LoKr's factoring)."""
    m = max(i for i in range(1, math.isqrt(n) + 1) if n % i == 0)
    return m, n // m


def lokr(i: int, o: int, r: int) -> int:
    """LoKr on an i -> o Linear: full W1 (a x c), W2 (b x d) low-rank when r < max(b, d) / 2."""
    (a, b), (c, d) = factors(o), factors(i)
    return a * c + (r * (b + d) if r < max(b, d) / 2 else b * d)


def analytic_trainable(method: str, p: dict, cfg) -> int:
    """The trainable count a method must produce, derived from the papers' definitions."""
    seq2seq = cfg.is_encoder_decoder
    h = cfg.d_model if seq2seq else cfg.hidden_size
    if method == "full":
        return total_params(cfg)
    if method == "lora":
        # MiCA freezes B (the smallest singular vectors of W): only A (r x in) trains.
        n = sum(
            (p["r"] * i if p["init_lora_weights"] == "mica" else p["r"] * (i + o))
            + (o if p["use_dora"] else 0)
            for g in p["target_modules"]
            for i, o in linear_shapes(cfg, g)
        )
    elif method == "lokr":
        n = sum(lokr(i, o, p["r"]) for g in p["target_modules"] for i, o in linear_shapes(cfg, g))
    elif method == "vera":
        n = sum(p["r"] + o for g in p["target_modules"] for _, o in linear_shapes(cfg, g))
    elif method == "ia3":
        ff = set(p["feedforward_modules"])
        n = sum(i if g in ff else o for g in p["target_modules"] for i, o in linear_shapes(cfg, g))
    elif method == "prompt_tuning":
        n = p["num_virtual_tokens"] * h
    elif method == "prefix_tuning":
        # Every attention module (T5: encoder self, decoder self and cross), one encoder each.
        width = p["encoder_hidden_size"] if p["prefix_projection"] else 0
        n = prefix(cfg, p["num_virtual_tokens"], width, p["layers"])
    elif method == "ln_tuning":
        # T5 RMS norms: weight only; 2 per encoder block, 3 per decoder block, 2 final norms.
        # BERT: weight + bias; embeddings.LayerNorm and 2 per layer.
        if seq2seq:
            n = h * (2 * cfg.num_layers + 3 * cfg.num_decoder_layers + 2)
        else:
            n = 2 * h * (1 + 2 * cfg.num_hidden_layers)
    elif method == "bitfit":
        i = cfg.intermediate_size
        # embeddings LN; per layer q,k,v,o + LN1 + intermediate + output + LN2; pooler.
        n = h + cfg.num_hidden_layers * (4 * h + h + i + h + h) + h
    elif method in ("houlsby", "pfeiffer", "compacter", "compacter++"):
        phm = (p["phm_dim"], p["phm_rank"]) if "phm_dim" in p else None
        one = adapter(h, h // p["reduction_factor"], phm)
        n = sum(sites(cfg, g, p["layers"]) for g in p["target_modules"]) * one
        n += p["phm_dim"] ** 3 if phm else 0  # the shared rule matrices, once
    elif method == "parallel":
        n = sites(cfg, "ffn", p["layers"]) * adapter(h, h // p["reduction_factor"])
    elif method == "mam":
        n = sites(cfg, "ffn", p["layers"]) * adapter(h, h // p["reduction_factor"])
        n += prefix(cfg, p["prefix_length"], p["mlp_width"], p["layers"])
    elif method == "unipelt":
        gate = sum(i + 1 for g in p["target_modules"] for i, _ in linear_shapes(cfg, g))
        n = gate + sum(p["r"] * (i + o) for g in p["target_modules"]
                       for i, o in linear_shapes(cfg, g))
        n += sites(cfg, "ffn_out", p["layers"]) * adapter(h, h // p["reduction_factor"], None, True)
        n += prefix(cfg, p["prefix_length"], p["mlp_width"], p["layers"], gated=True)
    elif method == "autopeft":
        # Each piece is left out when its size is 0 (adapter(h, 0) would still count biases).
        serial, parallel, length = p["serial_dim"], p["parallel_dim"], p["prefix_length"]
        n = sites(cfg, "ffn_out", p["layers"]) * adapter(h, serial) if serial else 0
        n += sites(cfg, "ffn", p["layers"]) * adapter(h, parallel) if parallel else 0
        n += prefix(cfg, length, p["mlp_width"], p["layers"]) if length else 0
    else:
        raise AssertionError(f"no analytic count for {method}")
    return n + head(cfg)


# ------------------------------------------------------------------------- the method table
CASES = [
    ("full", {}),
    ("lora", {}),
    ("lora", {"r": 2, "target_modules": list(GROUPS), "use_dora": True, "use_rslora": True}),
    ("lora", {"init_lora_weights": "pissa"}),
    ("lora", {"init_lora_weights": "pissa_niter_2", "target_modules": ["ffn_in"]}),
    ("lora", {"init_lora_weights": "olora", "use_rslora": True}),
    ("lora", {"init_lora_weights": "orthogonal", "use_dora": True}),
    ("lora", {"init_lora_weights": "gaussian"}),
    ("lora", {"init_lora_weights": "mica", "r": 4}),
    ("ia3", {}),
    ("ia3", {"target_modules": ["q", "ffn_in"], "feedforward_modules": []}),
    ("prefix_tuning", {}),
    (
        "prefix_tuning",
        {"num_virtual_tokens": 4, "prefix_projection": True, "encoder_hidden_size": 16},
    ),
    ("prefix_tuning", {"num_virtual_tokens": 2, "layers": "mask:01"}),
    ("prompt_tuning", {}),
    ("prompt_tuning", {"num_virtual_tokens": 3}),
    ("ln_tuning", {}),
    ("bitfit", {}),
    ("lokr", {}),
    ("lokr", {"r": 2, "alpha": 4, "target_modules": list(GROUPS)}),
    ("vera", {"r": 16}),
    ("houlsby", {}),
    ("houlsby", {"reduction_factor": 4, "layers": "mask:01"}),
    ("pfeiffer", {}),
    ("parallel", {}),
    ("parallel", {"reduction_factor": 8, "scaling": 1.0, "layers": "mask:10"}),
    ("compacter", {"reduction_factor": 4}),
    ("compacter++", {"reduction_factor": 4, "phm_rank": 2}),
    ("mam", {"prefix_length": 3, "mlp_width": 16}),
    ("mam", {"mlp_width": 0, "layers": "mask:10"}),
    ("unipelt", {"prefix_length": 2, "mlp_width": 8}),
    ("autopeft", {"layers": "mask:11"}),
    ("autopeft", {"serial_dim": 0, "prefix_length": 0, "layers": "mask:01"}),
    ("autopeft", {"parallel_dim": 0, "serial_dim": 4, "mlp_width": 8}),
]
ARCHS = {"t5": tiny_t5, "bert": tiny_bert}
NOT_APPLICABLE = {("t5", "bitfit")}


def _id(case):
    method, params = case
    return method + ("" if not params else "-" + "-".join(f"{k}={v}" for k, v in params.items()))


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_method_trains_with_analytic_count(arch, case):
    name, overrides = case
    method = get_method(name)
    model = ARCHS[arch]()
    cfg, info = model.config, ModelInfo.from_config(model.config)
    base = count_parameters(model)
    assert base.total == total_params(cfg)

    if (arch, name) in NOT_APPLICABLE:
        assert method.check(model, info)
        with pytest.raises(MethodNotApplicable, match="no bias parameters"):
            method.build(model, overrides, info)
        return

    model = method.build(model, overrides, info)
    count = count_parameters(model)
    assert count.trainable == analytic_trainable(name, method.resolve_params(overrides), cfg)
    # peft adds the adapter (and frozen copies of what it replaces); full adds nothing.
    added = 0 if name == "full" else count.trainable
    params = method.resolve_params(overrides)
    if name == "lora" and params["init_lora_weights"] == "mica":  # B is a frozen parameter
        added += sum(params["r"] * o for g in params["target_modules"]
                     for _, o in linear_shapes(cfg, g))
    assert count.total == base.total + added
    if not info.is_seq2seq:
        head_params = [
            n for n, p in model.named_parameters() if "classifier" in n and p.requires_grad
        ]
        assert head_params, "the classification head must train under every method"

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = model(**tiny_batch(cfg)).loss
    assert math.isfinite(loss.item())
    loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    # Every trainable parameter is in the graph: no dead parameters counted as trainable.
    assert all(p.grad is not None for p in trainable.values())
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    torch.optim.AdamW(trainable.values(), lr=1e-2, weight_decay=0.0).step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= set(trainable)


# ------------------------------------------------------------------------------- registry
EXPECTED_PARAMS = {
    "full": {},
    "lora": {
        "r",
        "lora_alpha",
        "lora_dropout",
        "target_modules",
        "layers",
        "use_dora",
        "use_rslora",
        "init_lora_weights",
    },
    "ia3": {"target_modules", "feedforward_modules", "layers"},
    "prefix_tuning": {"num_virtual_tokens", "prefix_projection", "encoder_hidden_size", "layers"},
    "prompt_tuning": {"num_virtual_tokens"},
    "ln_tuning": {"layers"},
    "bitfit": {},
    "lokr": {"r", "alpha", "rank_dropout", "module_dropout", "target_modules", "layers"},
    "vera": {"r", "vera_dropout", "target_modules", "layers"},
    "houlsby": {"reduction_factor", "target_modules", "layers"},
    "pfeiffer": {"reduction_factor", "target_modules", "layers"},
    "parallel": {"reduction_factor", "scaling", "target_modules", "layers"},
    "compacter": {"reduction_factor", "phm_dim", "phm_rank", "target_modules", "layers"},
    "compacter++": {"reduction_factor", "phm_dim", "phm_rank", "target_modules", "layers"},
    "mam": {"prefix_length", "mlp_width", "reduction_factor", "scaling", "layers"},
    "unipelt": {"r", "lora_alpha", "target_modules", "prefix_length", "mlp_width",
                "reduction_factor", "layers"},
    "autopeft": {"serial_dim", "parallel_dim", "prefix_length", "mlp_width", "scaling", "layers"},
}


def test_registry_lists_every_method_with_its_params():
    methods = {m.name: m for m in list_methods()}
    # The peft table's methods: its peft fields plus our placement (test_peft_tuners.py
    # checks that the fields are peft's).
    expected = EXPECTED_PARAMS | {
        t.name: set(t.params) | (set() if t.prompt else {"target_modules", "layers"})
        for t in TUNERS
    }
    assert set(methods) == set(expected)
    for name, m in methods.items():
        assert set(m.params) == set(expected[name]), name
        low, high = m.lr_range
        assert 0 < low < high, name
    assert get_method("lora").params["target_modules"] == ["q", "v"]
    assert get_method("full").lr_range == (1e-5, 1e-4)


def test_unknown_method_and_param_are_errors():
    with pytest.raises(AutopeftError, match="known methods: adamss, autopeft, beft, bitfit"):
        get_method("adapterdrop")
    model = tiny_t5()
    with pytest.raises(AutopeftError, match="'rank'.*parameters are: .*lora_alpha"):
        get_method("lora").build(model, {"rank": 4}, ModelInfo.from_config(model.config))


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("lora", {"r": 0}, "r must be a positive integer"),
        ("lora", {"lora_dropout": 1.5}, "lora_dropout"),
        ("lora", {"use_dora": "yes"}, "use_dora must be true or false"),
        ("lora", {"init_lora_weights": "eva"}, "'eva' is not supported \\(data-driven"),
        ("lora", {"init_lora_weights": "pissa_niter_x"}, "use one of 'default', 'gaussian'"),
        ("lora", {"init_lora_weights": 1}, "init_lora_weights 1 is not supported"),
        ("lora", {"init_lora_weights": "olora", "use_dora": True}, "cannot be saved with use_dora"),
        ("lora", {"target_modules": []}, "target_modules must be a non-empty list"),
        ("lora", {"target_modules": ["qq"]}, "'qq' matches no Linear"),
        ("lora", {"layers": "5-9"}, "out of range"),
        ("ia3", {"feedforward_modules": ["ffn_in"]}, "must also be in target_modules"),
        ("prompt_tuning", {"num_virtual_tokens": 0}, "num_virtual_tokens"),
        ("ln_tuning", {"layers": "middle"}, "not understood"),
        ("lokr", {"r": 0}, "r must be a positive integer"),
        ("vera", {"vera_dropout": 1.0}, "vera_dropout"),
        ("houlsby", {"reduction_factor": 64}, "leaves no bottleneck for width 32"),
        ("houlsby", {"target_modules": ["dec.o"]}, "'dec.o' matches no Linear"),
        ("houlsby", {"target_modules": ["ffn"]}, "'ffn' is a block"),
        ("pfeiffer", {"layers": "mask:101"}, "3 bits, which does not fit a stack of 2"),
        ("parallel", {"target_modules": ["attn"]}, "parallel adapters go beside the FFN"),
        ("parallel", {"scaling": 0}, "scaling must be a number > 0"),
        ("compacter", {}, "phm_dim 4 must divide the model width 32 and the bottleneck 1"),
        ("compacter", {"reduction_factor": 4, "phm_rank": 0}, "phm_rank"),
        ("mam", {"prefix_length": 0}, "prefix_length must be a positive integer"),
        ("mam", {"mlp_width": -1}, "mlp_width must be an integer >= 0"),
        ("unipelt", {"target_modules": ["ffn_out"]}, "in both adapter_modules and lora_modules"),
        ("autopeft", {"serial_dim": 0, "parallel_dim": 0, "prefix_length": 0}, "nothing"),
    ],
)
def test_bad_param_values_are_errors(name, params, message):
    model = tiny_bert()
    with pytest.raises(AutopeftError, match=message):
        get_method(name).build(model, params, ModelInfo.from_config(model.config))


# ------------------------------------------------------------------- layers really restrict
def _layers_of(model, marker: str) -> set[tuple[str, int]]:
    """(stack, layer index) of every parameter whose name contains ``marker``."""
    found = set()
    for n, _ in model.named_parameters():
        if marker in n:
            parts = n.split(".")
            for stack in ("encoder", "decoder"):
                if stack in parts:
                    j = parts.index(stack)
                    found.add(
                        (stack, int(parts[j + 2]))
                        if parts[j + 1] in ("block", "layer")
                        else (stack, -1)
                    )
    return found


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize(
    "name, params, marker",
    [
        ("lora", {"layers": [1]}, "lora_A"),
        ("ia3", {"layers": "0-0"}, "ia3_l"),
        ("ln_tuning", {"layers": "upper_half"}, "ln_tuning_layers"),
        ("lokr", {"layers": "mask:01"}, "lokr_w1"),
        ("vera", {"layers": "0-0"}, "vera_lambda_b"),
        ("houlsby", {"layers": "mask:01"}, "adapter_bottleneck"),
        ("parallel", {"layers": "0-0"}, "adapter_bottleneck"),
        ("compacter++", {"layers": [1], "reduction_factor": 4}, "adapter_bottleneck"),
        ("mam", {"layers": "0-0", "mlp_width": 8}, "adapter_bottleneck"),
        ("unipelt", {"layers": "mask:01", "mlp_width": 8}, "adapter_prefix_gate"),
        ("unipelt", {"layers": [1], "mlp_width": 8}, "adapter_lora"),
        ("autopeft", {"layers": "mask:10", "parallel_dim": 0, "prefix_length": 0},
         "adapter_bottleneck"),
    ],
)
def test_layers_restrict_placement(arch, name, params, marker):
    model = ARCHS[arch]()
    info = ModelInfo.from_config(model.config)
    model = get_method(name).build(model, params, info)
    want = 0 if params["layers"] in ("0-0", "mask:10") else 1
    stacks = {"encoder", "decoder"} if info.is_seq2seq else {"encoder"}
    assert _layers_of(model, marker) == {(s, want) for s in stacks}


# ------------------------------------------------------------------------------ prefix tuning
def test_prefix_tuning_t5_reaches_every_attention_and_fits_uneven_shapes():
    # Keys and values are num_heads * d_kv wide (not d_model), and the decoder has its own
    # depth: peft's prefix tuning got both wrong and fed the decoder's self-attention only.
    model = tiny_t5(num_decoder_layers=3, d_kv=16)
    cfg = model.config
    model = get_method("prefix_tuning").build(
        model, {"num_virtual_tokens": 2}, ModelInfo.from_config(cfg)
    )
    inner = cfg.num_heads * cfg.d_kv
    assert count_parameters(model).trainable == 2 * 2 * inner * (2 + 3 + 3)
    seen = []
    model.get_base_model().encoder.register_forward_hook(lambda m, i, o: seen.append(o[0].detach()))
    batch = tiny_batch(cfg)
    prefixes = model.base_model.adapter_prefix["default"]
    assert set(prefixes) == {"encoder", "decoder", "cross"}
    with torch.no_grad():
        losses = [model(**batch).loss]
        for location in ("encoder", "decoder", "cross"):
            prefixes[location].tokens.add_(1.0)
            losses.append(model(**batch).loss)
    assert not torch.equal(seen[0], seen[1]), "the T5 encoder must see its prefix"
    assert torch.equal(seen[1], seen[2]) and torch.equal(seen[2], seen[3])
    assert all(not torch.equal(a, b) for a, b in zip(losses, losses[1:], strict=False)), losses


def test_import_is_light():
    code = (
        "import sys, autopeft.methods as m; m.list_methods(); "
        "import autopeft.methods.placement, autopeft.methods.counting; "
        "bad = [x for x in ('torch', 'peft', 'transformers') if x in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------ numbers `estimate` must match
@pytest.mark.skipif(not (CONFIGS / "t5-large").is_dir(), reason="../shared model configs absent")
@pytest.mark.parametrize(
    "name, trainable",
    [("lora", 2_359_296), ("ia3", 344_064), ("lokr", 221_184), ("vera", 184_320),
     ("houlsby", 12_687_360), ("pfeiffer", 6_343_680), ("parallel", 50_405_376),
     ("compacter", 304_192), ("compacter++", 152_128), ("mam", 171_069_792),
     ("unipelt", 86_223_624), ("autopeft", 4_425_216)],
)
def test_t5_large_on_meta(name, trainable):
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config.from_pretrained(CONFIGS / "t5-large")
    with torch.device("meta"):
        model = T5ForConditionalGeneration(config)
    assert count_parameters(model).total == 737_668_096
    model = get_method(name).build(model, None, ModelInfo.from_config(config))
    count = count_parameters(model)
    assert count.trainable == trainable == analytic_trainable(name, get_method(name).params, config)
    assert count.total == 737_668_096 + trainable


def test_bitfit_on_a_deeper_bert_where_peft_shortens_the_target_list():
    """>= 20 targets: peft rewrites them into name suffixes; every bias must still train."""
    from autopeft.methods import count_parameters, get_method
    from autopeft.methods.base import ModelInfo
    from autopeft.testing import tiny_bert

    model = tiny_bert(num_hidden_layers=4)
    biases = sum(p.numel() for n, p in model.named_parameters()
                 if n.endswith("bias") and "classifier" not in n)
    head = sum(p.numel() for n, p in model.named_parameters() if "classifier" in n)
    built = get_method("bitfit").build(model, {}, ModelInfo.from_config(model.config))
    assert count_parameters(built).trainable == biases + head
