"""Tokenisation once per study, length-grouped batches, dynamic padding."""

from __future__ import annotations

import pytest

from autopeft.runner.data import eval_batches, make_collator, tokenize_task, train_batches
from autopeft.tasks import load_task


def test_train_batches_cover_every_index_once_and_group_lengths():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(5, 200) for _ in range(400)]
    batches = train_batches(lengths, 16, seed=0, epoch=0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(400))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    shuffled = train_batches(lengths, 16, seed=0, epoch=0, group_by_length=False)
    spread_random = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in shuffled)
    assert spread < spread_random / 3
    assert train_batches(lengths, 16, seed=0, epoch=1) != batches  # reshuffled per epoch
    assert train_batches(lengths, 16, seed=0, epoch=0) == batches  # deterministic


def test_eval_batches_sorted():
    lengths = [5, 1, 3, 9, 2]
    assert eval_batches(lengths, 2) == [[1, 4], [2, 0], [3]]


@pytest.mark.usefixtures("shared_data")
def test_tokenize_encoder_and_dynamic_padding(minilm_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_dir)
    data = load_task("glue/rte", train_samples=32, eval_samples=16, seed=1)
    prep = tokenize_task(data, tok, is_seq2seq=False, max_length=64)
    assert len(prep.train) == 32 and all(len(f["input_ids"]) <= 64 for f in prep.train)
    assert all("labels" in f for f in prep.train) and not any("labels" in f for f in prep.eval)
    batch = make_collator(tok, is_seq2seq=False)([prep.train[i] for i in range(4)])
    assert batch["input_ids"].shape[1] == max(len(prep.train[i]["input_ids"]) for i in range(4))
    fixed = make_collator(tok, is_seq2seq=False, pad_to=64)([prep.train[i] for i in range(4)])
    assert fixed["input_ids"].shape[1] == 64


@pytest.mark.usefixtures("shared_data")
def test_tokenize_seq2seq_verbalises_labels(minilm_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_dir)
    data = load_task("glue/rte", train_samples=8, eval_samples=4, seed=1)
    prep = tokenize_task(data, tok, is_seq2seq=True, max_length=64)
    text = tok.decode(prep.train[0]["labels"], skip_special_tokens=True)
    assert text.replace(" ", "").replace("_", "") in {"entailment", "notentailment"}
    assert prep.max_target_length >= len(prep.train[0]["labels"])
    assert tok.decode(prep.train[0]["input_ids"]).lower().startswith("[cls] rte")
