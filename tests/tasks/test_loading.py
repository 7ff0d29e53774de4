"""Loading local GLUE/SuperGLUE copies (real and synthetic), the hub path, subsampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autopeft.errors import AutopeftError
from autopeft.paths import ENV_DATA_DIR, find_shared_dir
from autopeft.tasks import (
    Example,
    format_text2text,
    get_task,
    label_text,
    list_tasks,
    load_task,
    parse_label_text,
)


@pytest.fixture
def shared_data(monkeypatch) -> Path:
    shared = find_shared_dir()
    if shared is None or not (shared / "data").is_dir():
        pytest.skip("shared/ assets are not present")
    monkeypatch.delenv(ENV_DATA_DIR, raising=False)
    return shared / "data"


# --- the real data in shared/data -----------------------------------------------------------


def test_real_rte(shared_data):
    data = load_task("glue/rte", data_dir=shared_data)
    assert (len(data.train), len(data.eval)) == (2490, 277)
    assert data.source == f"local:{shared_data / 'glue' / 'rte'}"
    assert data.train[0] == Example(
        texts=("No Weapons of Mass Destruction Found in Iraq Yet.",
               "Weapons of Mass Destruction Found in Iraq."),
        label=1,  # not_entailment
    )
    for split in (data.train, data.eval):
        positives = sum(ex.label for ex in split) / len(split)
        assert 0.4 < positives < 0.6
    # An unbalanced quote (dev.tsv line 8) must not swallow the following lines.
    assert 'irreconcilable differences" as the reason' in data.eval[6].texts[0]
    assert data.eval[3].texts[0].startswith("The Amish community")
    assert '"If someone snaps' in data.eval[3].texts[0]


def test_real_sst2_default_dir_and_trailing_space(shared_data):
    data = load_task("sst2", data_dir=shared_data)
    assert (len(data.train), len(data.eval)) == (67349, 872)
    assert data.train[0] == Example(("hide new secretions from the parental units ",), 0)
    assert 0.5 < sum(ex.label for ex in data.train) / len(data.train) < 0.6
    assert {ex.label for ex in data.eval} == {0, 1}


def test_real_boolq_fewglue_train32(shared_data):
    data = load_task("superglue/boolq", data_dir=shared_data)
    assert (len(data.train), len(data.eval)) == (32, 3270)
    assert "train32.jsonl" in data.source
    assert data.train[0].texts[0] == "is ghost in the shell based on the anime"
    assert data.train[0].texts[1].startswith("Ghost in the Shell -- ")
    assert 0.55 < sum(ex.label for ex in data.eval) / len(data.eval) < 0.70  # ~62% True


def test_default_data_dir_is_used(shared_data, monkeypatch):
    monkeypatch.setenv(ENV_DATA_DIR, str(shared_data))
    data = load_task("glue/rte", eval_samples=5)
    assert data.source.startswith("local:") and len(data.eval) == 5


def test_subsampling_is_deterministic_and_seed_dependent(shared_data):
    first = load_task("glue/sst2", data_dir=shared_data, train_samples=50, eval_samples=20)
    again = load_task("glue/sst2", data_dir=shared_data, train_samples=50, eval_samples=20)
    other = load_task("glue/sst2", data_dir=shared_data, train_samples=50, seed=1)
    assert (len(first.train), len(first.eval)) == (50, 20)
    assert first.train == again.train and first.eval == again.eval
    assert first.train != other.train
    assert len(other.eval) == 872
    assert len({ex.texts for ex in first.train}) == 50  # without replacement
    full = load_task("glue/sst2", data_dir=shared_data, eval_samples=50)
    assert all(ex in full.eval for ex in first.eval)


def test_oversized_sample_keeps_everything(shared_data):
    data = load_task("superglue/boolq", data_dir=shared_data, train_samples=1000)
    assert len(data.train) == 32


@pytest.mark.parametrize("kwargs", [{"train_samples": 0}, {"eval_samples": -3}])
def test_non_positive_samples_rejected(kwargs, tmp_path):
    with pytest.raises(AutopeftError, match="must be a positive number"):
        load_task("glue/rte", data_dir=tmp_path, **kwargs)


# --- synthetic local copies of every layout ------------------------------------------------

def _tsv(*rows: tuple) -> str:
    return "".join("\t".join(map(str, row)) + "\n" for row in rows)


STSB_HEADER = ("index", "genre", "filename", "year", "old_index", "source1", "source2",
               "sentence1", "sentence2", "score")
MNLI_HEADER = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
               "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
               "sentence2", "label1")

# task -> (train.tsv, eval file name, eval file text, expected eval examples)
GLUE_CASES = {
    "cola": (
        _tsv(("gj04", 1, "", "Our friends won't buy this analysis."),
             ("gj04", 0, "*", "They drank the pub.")),
        "dev.tsv", _tsv(("cj99", 0, "*", 'He said "go".')),
        [Example(('He said "go".',), 0)],
    ),
    "sst2": (
        _tsv(("sentence", "label"), ("a gem ", 1)), "dev.tsv",
        _tsv(("sentence", "label"), ("dull", 0), ("\"wow\"", 1)),
        [Example(("dull",), 0), Example(('"wow"',), 1)],
    ),
    "mrpc": (
        "\ufeff" + _tsv(("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                        (1, 11, 12, "A said.", "A told.")),
        "dev.tsv",
        _tsv(("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"), (0, 3, 4, "x", "y")),
        [Example(("x", "y"), 0)],
    ),
    "qqp": (
        _tsv(("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
             (0, 1, 2, "How?", "How so?", 1)),
        "dev.tsv",
        _tsv(("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
             (5, 6, 7, "Why?", "When?", 0)),
        [Example(("Why?", "When?"), 0)],
    ),
    "stsb": (
        _tsv(STSB_HEADER, (0, "main-captions", "MSRvid", "2012test", 1, "none", "none",
                           "A plane.", "An air plane.", "5.000")),
        "dev.tsv",
        _tsv(STSB_HEADER, (1, "main-news", "x", "2012", 2, "n", "n", "A man.", "A dog.", "0.6")),
        [Example(("A man.", "A dog."), 0.6)],
    ),
    "mnli": (
        _tsv(MNLI_HEADER + ("gold_label",), (0, 1, 2, "gov", "p", "p", "p", "p",
                                              "It rains.", "It is wet.", "entailment",
                                              "entailment")),
        "dev_matched.tsv",
        _tsv(MNLI_HEADER + ("label2", "label3", "label4", "label5", "gold_label"),
             (0, 1, 2, "fic", "p", "p", "p", "p", "He ran.", "He sat.", "contradiction",
              "contradiction", "neutral", "contradiction", "contradiction", "contradiction"),
             (1, 1, 2, "fic", "p", "p", "p", "p", "Go.", "Went.", "neutral", "neutral",
              "neutral", "neutral", "neutral", "neutral")),
        [Example(("He ran.", "He sat."), 2), Example(("Go.", "Went."), 1)],
    ),
    "qnli": (
        _tsv(("index", "question", "sentence", "label"), (0, "Q?", "S.", "entailment")),
        "dev.tsv",
        _tsv(("index", "question", "sentence", "label"), (0, "Who?", "Me.", "not_entailment")),
        [Example(("Who?", "Me."), 1)],
    ),
    "rte": (
        _tsv(("index", "sentence1", "sentence2", "label"), (0, "A.", "B.", "entailment")),
        "dev.tsv",
        _tsv(("index", "sentence1", "sentence2", "label"), (0, "C.", "D.", "not_entailment")),
        [Example(("C.", "D."), 1)],
    ),
    "wnli": (
        _tsv(("index", "sentence1", "sentence2", "label"), (0, "It fell.", "X fell.", 1)),
        "dev.tsv",
        _tsv(("index", "sentence1", "sentence2", "label"), (0, "He left.", "Y left.", 0)),
        [Example(("He left.", "Y left."), 0)],
    ),
}


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("task", sorted(GLUE_CASES))
def test_glue_layouts(task, tmp_path):
    train_text, eval_name, eval_text, expected_eval = GLUE_CASES[task]
    _write(tmp_path, f"glue/{task}/train.tsv", train_text)
    _write(tmp_path, f"glue/{task}/{eval_name}", eval_text)
    data = load_task(f"glue/{task}", data_dir=tmp_path)
    assert data.eval == expected_eval
    assert data.source == f"local:{tmp_path / 'glue' / task}"
    spec = get_task(f"glue/{task}")
    assert data.train and all(len(ex.texts) == len(spec.text_fields) for ex in data.train)
    if task == "cola":
        assert [ex.label for ex in data.train] == [1, 0]
    if task == "stsb":
        assert data.train[0].label == 5.0
    if task == "sst2":
        assert data.train[0].texts == ("a gem ",)


def _jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


# task -> (one record as in the original files, expected example)
SUPERGLUE_CASES = {
    "boolq": ({"question": "is it?", "passage": "It is.", "label": False, "idx": 0},
              Example(("is it?", "It is."), 0)),
    "cb": ({"premise": "P.", "hypothesis": "H.", "label": "neutral", "idx": 0},
           Example(("P.", "H."), 2)),
    "copa": ({"premise": "It broke.", "choice1": "Dropped.", "choice2": "Fixed.",
              "question": "cause", "label": 0, "idx": 0},
             Example(("It broke.", "cause", "Dropped.", "Fixed."), 0)),
    "rte": ({"premise": "A.", "hypothesis": "B.", "label": "not_entailment", "idx": 0},
            Example(("A.", "B."), 1)),
    "wic": ({"word": "bank", "sentence1": "River bank.", "sentence2": "Bank loan.",
             "start1": 6, "end1": 10, "start2": 0, "end2": 4, "label": True, "idx": 0},
            Example(("bank", "River bank.", "Bank loan."), 1)),
    # The original WSC.zip nests the spans under "target".
    "wsc": ({"text": "Tom told Ann he won.", "target": {"span1_text": "Tom", "span1_index": 0,
             "span2_text": "he", "span2_index": 3}, "label": True, "idx": 0},
            Example(("Tom told Ann he won.", "Tom", "he"), 1)),
}


@pytest.mark.parametrize("task", sorted(SUPERGLUE_CASES))
def test_superglue_layouts(task, tmp_path):
    record, expected = SUPERGLUE_CASES[task]
    _write(tmp_path, f"superglue/{task}/train.jsonl", _jsonl(record, record) + "\n")
    _write(tmp_path, f"superglue/{task}/val.jsonl", _jsonl(record))
    data = load_task(f"superglue/{task}", data_dir=tmp_path)
    assert data.train == [expected, expected]
    assert data.eval == [expected]
    assert data.source == f"local:{tmp_path / 'superglue' / task}"


def test_wsc_flat_hub_style_records(tmp_path):
    record = {"text": "T", "span1_text": "a", "span2_text": "b", "label": 0}
    _write(tmp_path, "superglue/wsc/train.jsonl", _jsonl(record))
    _write(tmp_path, "superglue/wsc/val.jsonl", _jsonl(record))
    assert load_task("superglue/wsc", data_dir=tmp_path).eval == [Example(("T", "a", "b"), 0)]


# --- errors from local copies -------------------------------------------------------------

def test_missing_eval_file_is_named(tmp_path):
    _write(tmp_path, "glue/rte/train.tsv", GLUE_CASES["rte"][0])
    with pytest.raises(AutopeftError, match="missing file .*dev.tsv") as info:
        load_task("glue/rte", data_dir=tmp_path)
    assert str(tmp_path / "glue" / "rte" / "dev.tsv") in str(info.value)


def test_missing_mnli_dev_matched_is_named(tmp_path):
    _write(tmp_path, "glue/mnli/train.tsv", GLUE_CASES["mnli"][0])
    _write(tmp_path, "glue/mnli/dev.tsv", GLUE_CASES["mnli"][2])
    with pytest.raises(AutopeftError, match="missing file .*dev_matched.tsv"):
        load_task("glue/mnli", data_dir=tmp_path)


def test_missing_task_dir_is_named(tmp_path):
    with pytest.raises(AutopeftError) as info:
        load_task("glue/cola", data_dir=tmp_path)
    message = str(info.value)
    assert f"no folder {tmp_path / 'glue' / 'cola'}" in message
    assert "glue/cola/train.tsv and dev.tsv" in message


def test_missing_superglue_train(tmp_path):
    _write(tmp_path, "superglue/cb/val.jsonl", _jsonl(SUPERGLUE_CASES["cb"][0]))
    with pytest.raises(AutopeftError, match="missing file .*train.jsonl"):
        load_task("superglue/cb", data_dir=tmp_path)


def test_several_fewglue_train_files_are_ambiguous(tmp_path):
    record = SUPERGLUE_CASES["cb"][0]
    for name in ("train32.jsonl", "train64.jsonl", "val.jsonl"):
        _write(tmp_path, f"superglue/cb/{name}", _jsonl(record))
    with pytest.raises(AutopeftError, match="train32.jsonl, train64.jsonl"):
        load_task("superglue/cb", data_dir=tmp_path)


def test_missing_header_column(tmp_path):
    _write(tmp_path, "glue/qnli/train.tsv", _tsv(("index", "question", "label"), (0, "Q", 0)))
    _write(tmp_path, "glue/qnli/dev.tsv", GLUE_CASES["qnli"][2])
    with pytest.raises(AutopeftError, match="no column 'sentence'"):
        load_task("glue/qnli", data_dir=tmp_path)


def test_few_malformed_rows_are_skipped(tmp_path, caplog):
    header = ("index", "sentence1", "sentence2", "label")
    rows = [(i, f"s{i}", f"t{i}", "entailment") for i in range(199)]
    rows.insert(50, (999, "only two columns"))
    _write(tmp_path, "glue/rte/train.tsv", _tsv(header, *rows))
    _write(tmp_path, "glue/rte/dev.tsv", GLUE_CASES["rte"][2])
    data = load_task("glue/rte", data_dir=tmp_path)
    assert len(data.train) == 199
    assert "skipped 1 malformed rows of 200 (first at line 52" in caplog.text


@pytest.mark.parametrize(
    ("rel", "text", "reason"),
    [
        ("glue/rte/dev.tsv",
         _tsv(("index", "sentence1", "sentence2", "label"), (0, "a", "b", "entailment"),
              (1, "a\tb", "c", "entailment"), (2, "a", "b", "maybe")),
         "line 3: 5 columns instead of 4"),
        ("superglue/rte/val.jsonl",
         _jsonl({"premise": "a", "hypothesis": "b", "label": "entailment"}) + "{not json\n",
         "line 2: invalid JSON"),
        ("superglue/rte/val.jsonl", _jsonl({"premise": "a", "label": 0}, {"x": 1}),
         "line 1: no text field 'hypothesis'"),
        ("superglue/rte/val.jsonl", _jsonl({"premise": "a", "hypothesis": "b", "label": 7}),
         "line 1: label 7 out of range"),
    ],
)
def test_many_malformed_rows_fail_naming_file_and_line(tmp_path, rel, text, reason):
    path = _write(tmp_path, rel, text)
    bench, task = rel.split("/")[:2]
    train = "train.tsv" if bench == "glue" else "train.jsonl"
    good = GLUE_CASES["rte"][0] if bench == "glue" else _jsonl(SUPERGLUE_CASES["rte"][0])
    _write(tmp_path, f"{bench}/{task}/{train}", good)
    with pytest.raises(AutopeftError, match="malformed") as info:
        load_task(f"{bench}/{task}", data_dir=tmp_path)
    assert str(path) in str(info.value) and reason in str(info.value)


# --- T5 text-to-text ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "texts", "expected"),
    [
        ("glue/rte", ("A b.", "C."), "rte sentence1: A b. sentence2: C."),
        ("glue/sst2", ("hide new secretions ",), "sst2 sentence: hide new secretions"),
        ("glue/mnli", ("P.", "H."), "mnli premise: P. hypothesis: H."),
        ("superglue/boolq", ("is it?", "It is."), "boolq question: is it? passage: It is."),
        ("superglue/copa", ("It broke.", "cause", "Dropped.", "Fixed."),
         "copa premise: It broke. question: cause choice1: Dropped. choice2: Fixed."),
        ("superglue/wsc", ("Tom won.", "Tom", "he"),
         "wsc text: Tom won. span1_text: Tom span2_text: he"),
    ],
)
def test_format_text2text(name, texts, expected):
    assert format_text2text(get_task(name), Example(texts, 0)) == expected


@pytest.mark.parametrize("spec", list_tasks(), ids=lambda s: s.name)
def test_text2text_round_trip_for_every_task(spec):
    texts = tuple(f"text {i}" for i in range(len(spec.text_fields)))
    source = format_text2text(spec, Example(texts, 0))
    assert source.startswith(spec.short_name + " ")
    for field, text in zip(spec.text_fields, texts, strict=True):
        assert f"{field}: {text}" in source
    if spec.is_regression:
        for score in (0.0, 1.2, 2.4, 5.0):
            assert parse_label_text(spec, label_text(spec, score)) == pytest.approx(score)
    else:
        for label in range(spec.num_labels):
            target = label_text(spec, label)
            assert target == spec.label_names[label]
            assert parse_label_text(spec, target) == label
            assert parse_label_text(spec, f"  {target.upper()} \n") == label
        assert parse_label_text(spec, "no idea") is None
        assert parse_label_text(spec, "") is None
        with pytest.raises(ValueError):
            label_text(spec, spec.num_labels)


def test_label_text_stsb_rounds_to_fifths():
    stsb = get_task("glue/stsb")
    # Exact ties (2.5 * 5 = 12.5) round half to even, like T5's tf.round.
    assert [label_text(stsb, x) for x in (3.14, 3.35, 0.09, -0.01, 4.95, 2.5)] == [
        "3.2", "3.4", "0.0", "0.0", "5.0", "2.4"]
    assert parse_label_text(stsb, " 3.8 ") == 3.8
    assert parse_label_text(stsb, "three") is None
    assert parse_label_text(stsb, "nan") is None


def test_parse_label_text_tolerates_separator_spelling():
    rte = get_task("glue/rte")
    assert parse_label_text(rte, "not entailment") == 1
    assert parse_label_text(rte, "Not-Entailment") == 1
    assert parse_label_text(rte, "entailment.") is None
    assert parse_label_text(get_task("superglue/boolq"), "true") == 1
    assert parse_label_text(get_task("superglue/copa"), "choice2") == 1
