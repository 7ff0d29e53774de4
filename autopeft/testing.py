"""Tiny random models for tests: no download, no hub, pure functions of a seed.

Every test that needs a model (methods, counting, memory estimates, the trial runner) builds
it here, so all of them agree on the same small architectures:

* :func:`tiny_t5` — ``T5ForConditionalGeneration``, d_model 32, 2 encoder + 2 decoder layers,
  4 heads of d_kv 8, d_ff 64, vocabulary 128, tied embeddings (like t5-small ... t5-11b).
* :func:`tiny_bert` — ``BertForSequenceClassification``, hidden 32, 2 layers, 4 heads,
  intermediate 64, vocabulary 128, with a fresh ``num_labels`` head.

Dropout is 0 so that forward passes are deterministic. torch and transformers are imported
inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

_T5_DEFAULTS: dict[str, Any] = {
    "vocab_size": 128,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 16,
    "dropout_rate": 0.0,
    "feed_forward_proj": "relu",
    "tie_word_embeddings": True,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}

_BERT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 128,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    # 512 like real BERT: room for prompt tokens, and no embedding other than the word
    # embeddings has vocab_size rows (peft finds the word embeddings by that shape).
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "pad_token_id": 0,
}


def tiny_t5_config(**overrides: Any) -> Any:
    """A tiny ``T5Config``; keyword arguments override the defaults above."""
    from transformers import T5Config

    return T5Config(**{**_T5_DEFAULTS, **overrides})


def tiny_bert_config(**overrides: Any) -> Any:
    """A tiny ``BertConfig``; keyword arguments override the defaults above."""
    from transformers import BertConfig

    return BertConfig(**{**_BERT_DEFAULTS, **overrides})


def _seeded(seed: int, build: Any) -> Any:
    import torch

    # fork_rng keeps the caller's global RNG untouched: the builders are pure functions of seed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def tiny_t5(seed: int = 0, **overrides: Any) -> Any:
    """A randomly initialised tiny ``T5ForConditionalGeneration`` in train mode.

    Args:
        seed: Seed of the weight initialisation; equal seeds give identical weights.
        **overrides: Passed to :func:`tiny_t5_config` (e.g. ``feed_forward_proj="gated-gelu"``
            for a T5 v1.1-style gated FFN, ``num_decoder_layers=3``).
    """
    from transformers import T5ForConditionalGeneration

    config = tiny_t5_config(**overrides)
    model = _seeded(seed, lambda: T5ForConditionalGeneration(config))
    return model.train()


def tiny_bert(num_labels: int = 2, seed: int = 0, **overrides: Any) -> Any:
    """A randomly initialised tiny ``BertForSequenceClassification`` in train mode.

    Args:
        num_labels: Size of the fresh classification head.
        seed: Seed of the weight initialisation; equal seeds give identical weights.
        **overrides: Passed to :func:`tiny_bert_config`.
    """
    from transformers import BertForSequenceClassification

    config = tiny_bert_config(num_labels=num_labels, **overrides)
    model = _seeded(seed, lambda: BertForSequenceClassification(config))
    return model.train()


def tiny_batch(config: Any, batch_size: int = 2, seq_len: int = 8, seed: int = 0) -> dict:
    """A random batch with labels for a model built from ``config``.

    Seq2seq configs get ``input_ids``, ``attention_mask`` and target ``labels`` (text-to-text);
    encoder configs get ``input_ids``, ``attention_mask`` and class ``labels``. Token ids start
    at 2 so that no pad or eos token appears inside a sequence.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(2, config.vocab_size, (batch_size, seq_len), generator=gen)
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if getattr(config, "is_encoder_decoder", False):
        batch["labels"] = torch.randint(2, config.vocab_size, (batch_size, 4), generator=gen)
    else:
        batch["labels"] = torch.randint(0, config.num_labels, (batch_size,), generator=gen)
    return batch


def padded_batch(config: Any) -> dict:
    """A 3 x 7 :func:`tiny_batch` with padding: row 1 keeps 4 tokens, row 2 keeps 2 (and a
    seq2seq target row 0 keeps 2)."""
    import torch

    batch = tiny_batch(config, batch_size=3, seq_len=7)
    batch["attention_mask"][1, 4:] = 0
    batch["attention_mask"][2, 2:] = 0
    if getattr(config, "is_encoder_decoder", False):
        batch["decoder_attention_mask"] = torch.ones_like(batch["labels"])
        batch["decoder_attention_mask"][0, 2:] = 0
    return batch


def set_attention(model: Any, impl: str) -> None:
    """Switch every config in ``model`` to the attention implementation ``impl``."""
    for module in model.modules():
        cfg = getattr(module, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation"):
            cfg._attn_implementation = impl


def minilm_tokenizer_dir() -> Any:
    """The MiniLM tokenizer folder from ``../shared`` (a real WordPiece vocabulary)."""
    from autopeft.paths import find_shared_dir

    shared = find_shared_dir()
    path = shared / "models" / "all-MiniLM-L6-v2" if shared else None
    if path is None or not path.is_dir():
        raise FileNotFoundError("../shared/models/all-MiniLM-L6-v2 not found (set AUTOPEFT_SHARED)")
    return path


def tiny_model_dir(kind: str, path: Any, seed: int = 0) -> Any:
    """Save a tiny random ``bert`` or ``t5`` with the MiniLM tokenizer as a local model folder.

    The vocabulary is the tokenizer's (30,522 WordPiece tokens), so the folder loads through
    the same ``from_pretrained`` path as a real model. For T5, ``[PAD]`` starts decoding and
    ``[SEP]`` ends it.
    """
    from pathlib import Path

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_tokenizer_dir()))
    vocab = len(tok)
    if kind == "bert":
        model = tiny_bert(seed=seed, vocab_size=vocab, pad_token_id=tok.pad_token_id)
    elif kind == "t5":
        model = tiny_t5(seed=seed, vocab_size=vocab, pad_token_id=tok.pad_token_id,
                        eos_token_id=tok.sep_token_id, decoder_start_token_id=tok.pad_token_id)
    else:
        raise ValueError(f"kind must be 'bert' or 't5', got {kind!r}")
    path = Path(path)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


# -- fault injection for controller tests ---------------------------------------------------
# Faults reach trials through a hook that tests install, never through the production path:
# fault_env() writes a sitecustomize.py that every Python process started with the returned
# environment runs at start-up (the search's CLI process and its Ray workers alike); it
# calls install_faults(), which wraps the Ray trainable by name. Ray resolves the trainable
# by module and name in each worker, so the wrapped one runs there.
FAULTS_ENV = "AUTOPEFT_TEST_FAULTS"
FAULTS = ("exit", "raise", "oom", "nan")


STORE_FAULT_ENV = "AUTOPEFT_TEST_STORE_FAULT"


def fault_env(folder: Any, plan: dict[int, str], *, store_full_after: int | None = None,
              store_full_for: str = "all") -> dict[str, str]:
    """Environment variables that make trial ``n`` of a search fail as ``plan[n]`` says.

    ``exit`` kills the trial's Ray worker (a Ray-level failure), ``raise`` raises inside the
    trial, ``oom`` raises torch's CUDA out-of-memory error, ``nan`` makes the loss diverge.

    With ``store_full_after=n`` the search's store behaves like a full disk once ``n`` trial
    rows are written: SQLite's own "database or disk is full" error, raised where the driver
    writes (``store_full_for="all"``: every write; ``"trials"``: trial rows only, so the
    study can still be marked; ``"front"``: only the front's update, so trial rows and the
    study can both still be written, as after a crash of the search itself).
    """
    import json
    import os
    from pathlib import Path

    bad = sorted(set(plan.values()) - set(FAULTS))
    if bad:
        raise ValueError(f"unknown faults {bad}; known: {', '.join(FAULTS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import autopeft.testing\nautopeft.testing.install_faults_from_env()\n"
    )
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": path, FAULTS_ENV: json.dumps({str(k): v for k, v in plan.items()})}
    if store_full_after is not None:
        if store_full_for not in ("all", "trials", "front"):
            raise ValueError(f"store_full_for must be 'all', 'trials' or 'front', got "
                             f"{store_full_for!r}")
        env[STORE_FAULT_ENV] = json.dumps({"after": store_full_after, "for": store_full_for})
    return env


def install_faults_from_env() -> None:
    """Install the plan that :func:`fault_env` put in the environment (sitecustomize)."""
    import json
    import os

    plan = os.environ.get(FAULTS_ENV)
    if plan:
        install_faults({int(k): v for k, v in json.loads(plan).items()})
    store = os.environ.get(STORE_FAULT_ENV)
    if store:
        fault = json.loads(store)
        install_store_full(fault["after"], writes=fault["for"])


def install_store_full(after: int, *, writes: str = "all") -> None:
    """Make :class:`autopeft.store.Store` writes fail like a full disk after ``after`` trial
    rows (in this process): the sqlite3 error SQLite gives, wrapped as SQLAlchemy does.
    ``writes`` says which fail: see :func:`fault_env`."""
    import contextlib
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from autopeft.store import Store

    written = [0]
    add_trial, tx, set_pareto = Store.add_trial, Store._tx, Store.set_pareto

    def full() -> OperationalError:
        return OperationalError("INSERT INTO autopeft_trials ...", {},
                                sqlite3.OperationalError("database or disk is full"))

    def failing_add_trial(self: Any, *args: Any, **kwargs: Any) -> Any:
        if written[0] >= after and writes != "front":
            raise full()
        row = add_trial(self, *args, **kwargs)
        written[0] += 1
        return row

    def failing_set_pareto(self: Any, *args: Any, **kwargs: Any) -> Any:
        if written[0] >= after:
            raise full()
        return set_pareto(self, *args, **kwargs)

    @contextlib.contextmanager
    def failing_tx(self: Any) -> Any:
        if written[0] >= after:
            raise full()
        with tx(self) as session:
            yield session

    Store.add_trial = failing_add_trial  # counts rows; fails them unless writes == "front"
    if writes == "front":
        Store.set_pareto = failing_set_pareto
    if writes == "all":
        Store._tx = failing_tx


def install_faults(plan: dict[int, str]) -> None:
    """Wrap ``autopeft.controller.trainable.trainable`` so trial numbers in ``plan`` fail."""
    import contextlib
    import functools
    import os

    import autopeft.controller.trainable as module
    import autopeft.runner.trial as runner

    real = module.trainable
    if getattr(real, "autopeft_faults", None) is not None:
        return  # installed already

    @contextlib.contextmanager
    def faulty_build(fault: str):
        build = runner.build_trial_model

        def broken(*args: Any, **kwargs: Any) -> Any:
            import torch

            if fault == "raise":
                raise RuntimeError("injected fault")
            if fault == "oom":
                raise torch.OutOfMemoryError(
                    "CUDA out of memory (injected). Tried to allocate 8 GiB")
            model, *rest = build(*args, **kwargs)
            with torch.no_grad():
                for p in model.parameters():
                    if p.requires_grad:
                        p.fill_(float("nan"))
            return (model, *rest)

        runner.build_trial_model = broken
        try:
            yield
        finally:
            runner.build_trial_model = build

    @functools.wraps(real)
    def trainable(config: dict, **kwargs: Any) -> None:
        from autopeft.controller.searcher import NUMBER_KEY

        fault = plan.get(int(config.get(NUMBER_KEY, -1)))
        if fault == "exit":
            os._exit(3)
        if fault is None:
            return real(config, **kwargs)
        with faulty_build(fault):
            return real(config, **kwargs)

    trainable.autopeft_faults = plan  # type: ignore[attr-defined]
    module.trainable = trainable
