"""front/trials/studies output in every format, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from autopeft.front import front_trials, pareto_trials
from autopeft.report import render, study_rows, trial_rows
from autopeft.store import Store

OBJECTIVES = [
    ("accuracy", "maximize"),
    ("trainable_params", "minimize"),
    ("peak_memory", "minimize"),
]
MiB = 2**20

# number, method, status, accuracy, trainable params, peak memory (MiB)
TRIALS = [
    (0, "lora", "completed", 0.80, 300_000, 900),  # front: best accuracy
    (1, "ia3", "completed", 0.74, 20_000, 850),  # front: fewest params
    (2, "lora", "completed", 0.78, 300_000, 950),  # dominated by 0
    (3, "full", "completed", 0.79, 22_000_000, 700),  # front: least memory
    (4, "lora", "failed", None, 300_000, None),
    (5, "prefix", "infeasible", 0.99, 10, 1),  # would dominate all, but not completed
    (6, "lora", "oom", None, 600_000, 8000),
    (7, "bitfit", "completed", 0.70, None, 800),  # an objective unknown: not ranked
    (8, "ia3", "completed", 0.74, 20_000, 850),  # duplicate of 1: also on the front
]


@pytest.fixture
def store(store_url):
    with Store(store_url) as s:
        s.create_study(
            "demo",
            task="rte",
            model="minilm",
            space_name="default",
            space={},
            budget={},
            hardware={},
            settings={},
            objectives=OBJECTIVES,
        )
        for number, method, status, acc, params, mem in TRIALS:
            s.add_trial(
                "demo",
                number=number,
                method=method,
                params={"r": 8, "targets": ["q", "v"]},
                learning_rate=1e-3,
                status=status,
                reason=None if acc else f"{status} [x]",
                primary_metric=acc,
                metrics={"accuracy": acc, "f1": 0.5, "status": 1.0},
                trainable_params=params,
                total_params=22_700_000,
                peak_memory_bytes=None if mem is None else mem * MiB,
                memory_kind="cpu_peak_rss_delta",
                train_seconds=12.0,
                examples_per_second=50.0,
                steps=40,
            )
        s.set_pareto("demo", [2, 5])  # stale flags: the front must not trust them
        yield s


def test_front_is_recomputed_from_completed_trials(store):
    front = front_trials(store, "demo")
    assert [t.number for t in front] == [0, 3, 1, 8]  # best accuracy first, ties by number
    # Minimising the primary metric: trial 7 (0.70, 800 MiB) now wins, lowest first.
    trials = store.trials("demo")
    loss_like = pareto_trials(trials, [("loss", "minimize"), ("peak_memory", "minimize")])
    assert [t.number for t in loss_like] == [7, 3]
    # Objectives may be metrics too; a name no trial has leaves nothing to rank.
    by_f1 = pareto_trials(trials, [("accuracy", "max"), ("f1", "max")])
    assert [t.number for t in by_f1] == [0]
    assert pareto_trials(trials, [("accuracy", "max"), ("nope", "min")]) == []
    assert pareto_trials([], OBJECTIVES) == []


def test_front_formats(store):
    rows = trial_rows(front_trials(store, "demo"), detailed=False, primary="accuracy")
    table = render(rows, "table", title="Pareto front of demo", width=200)
    assert "Pareto front of demo" in table and "\x1b[" not in table
    assert "900.0 MiB" in table and "r=8 targets=q,v" in table and "300,000" in table
    assert "prefix" not in table and "bitfit" not in table
    data = json.loads(render(rows, "json"))
    assert [d["number"] for d in data] == [0, 3, 1, 8]
    assert data[0]["params"] == {"r": 8, "targets": ["q", "v"]}
    assert data[0]["peak_memory_bytes"] == 900 * MiB
    assert isinstance(data[0]["trainable_params"], int)
    assert data[0]["accuracy"] == 0.8 and data[0]["trainable_pct"] == pytest.approx(1.3215859)
    assert list(data[0]) == rows.columns
    parsed = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert [int(r["number"]) for r in parsed] == [0, 3, 1, 8]
    assert int(parsed[0]["peak_memory_bytes"]) == 900 * MiB
    assert json.loads(parsed[0]["params"]) == {"r": 8, "targets": ["q", "v"]}
    assert parsed[0]["is_pareto"] == "false"


def test_trials_formats(store):
    trials = store.trials("demo")
    short = trial_rows(trials, detailed=False, primary="accuracy")
    assert short.columns[:7] == [
        "number",
        "method",
        "params",
        "learning_rate",
        "status",
        "reason",
        "accuracy",
    ]
    assert "f1" not in short.columns and "started_at" not in short.columns
    assert "unparseable_predictions" not in short.columns  # no trial has any
    rows = trial_rows(trials, detailed=True, primary="accuracy")
    assert {"f1", "metric_status", "total_params", "steps", "started_at"} <= set(rows.columns)
    assert "accuracy" in rows.columns and rows.columns.count("accuracy") == 1
    table = render(rows, "table", width=250)
    assert "…" not in render(rows, "table", width=60)  # too narrow: wider, never truncated
    assert "failed [x]" in table  # square brackets are text, not rich markup
    data = json.loads(render(rows, "json"))
    assert len(data) == len(TRIALS) and data[4]["status"] == "failed"
    assert data[4]["accuracy"] is None and data[4]["peak_memory_bytes"] is None
    assert [d["is_pareto"] for d in data if d["is_pareto"]] == [True, True]
    assert data[7]["trainable_pct"] is None
    lines = render(rows, "csv").splitlines()
    assert lines[0].split(",") == rows.columns and len(lines) == 1 + len(TRIALS)


def test_unparseable_predictions_are_shown_and_never_ranked(store, store_url, capsys):
    from autopeft.cli.main import main

    common = dict(method="lora", params={}, learning_rate=1e-3, total_params=22_700_000,
                  eval_examples=24)
    # generated junk only: its score (the metric's treatment of junk) must not rank
    store.add_trial("demo", number=9, status="failed", primary_metric=0.99,
                    trainable_params=10, peak_memory_bytes=MiB, unparseable_predictions=24,
                    reason="all 24 dev predictions were unparseable (e.g. dev example 0 "
                    "generated '')", **common)
    # partly junk: counted, and ranked on its score (it dominates trial 0: on 500 dev
    # examples 0.85 vs 0.80 is beyond the noise, on 24 it would not be)
    store.add_trial("demo", number=10, status="completed", primary_metric=0.85,
                    trainable_params=300_000, peak_memory_bytes=900 * MiB,
                    unparseable_predictions=5, **{**common, "eval_examples": 500})
    assert [t.number for t in front_trials(store, "demo")] == [10, 3, 1, 8]
    assert [t.number for t in pareto_trials(store.trials("demo"), OBJECTIVES)] == [10, 3, 1, 8]

    assert main(["trials", "--study", "demo", "--storage", store_url, "-f", "json"]) == 0
    by_number = {d["number"]: d for d in json.loads(capsys.readouterr().out)}
    assert (by_number[9]["unparseable_predictions"], by_number[9]["eval_examples"]) == (24, 24)
    assert by_number[9]["status"] == "failed" and "unparseable" in by_number[9]["reason"]
    assert by_number[10]["unparseable_predictions"] == 5
    assert by_number[0]["unparseable_predictions"] is None  # not recorded
    short = trial_rows(store.trials("demo"), detailed=False, primary="accuracy")
    assert "unparseable_predictions" in short.columns
    assert "unparseable" in render(short, "table", width=300)


def test_studies_formats(store):
    store.create_study(
        "empty",
        task="sst2",
        model="m",
        space_name="s",
        space={},
        budget={},
        hardware={},
        settings={},
        objectives=[("loss", "minimize")],
    )
    rows = study_rows(store.list_studies())
    data = json.loads(render(rows, "json"))
    assert [(d["name"], d["n_trials"], d["n_completed"], d["best_primary"]) for d in data] == [
        ("demo", len(TRIALS), 6, 0.80),
        ("empty", 0, 0, None),
    ]
    assert data[0]["objectives"][2] == ["peak_memory", "minimize"]
    assert data[0]["created_at"].endswith("+00:00")
    table = render(rows, "table", title="studies", width=200)
    assert "max accuracy, min trainable_params, min peak_memory" in table
    assert render(rows, "csv").splitlines()[0].startswith("name,status,task,model")


def test_empty_results():
    trials = trial_rows([], detailed=False, primary="accuracy")
    assert render(trials, "table") == "no trials\n"
    assert render(trials, "table", title="front").startswith("front: no trials")
    assert json.loads(render(trials, "json")) == []
    assert render(trials, "csv").strip().split(",") == trials.columns
    assert render(study_rows([]), "table") == "no studies\n"
    with pytest.raises(ValueError, match="unknown format"):
        render(trials, "xml")


def test_color_only_when_asked(store):
    rows = trial_rows(front_trials(store, "demo"), detailed=False, primary="accuracy")
    assert "\x1b[" in render(rows, "table", color=True, width=200)


def _fits(text: str, width: int) -> None:
    """Every line within ``width``, nothing cut, and a rich console of that width prints
    it without wrapping a single line."""
    from rich.console import Console

    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width, text
    assert "…" not in text
    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
    console.print(text, end="", markup=False, soft_wrap=False)
    assert console.file.getvalue().splitlines() == lines


def test_tables_fit_a_100_column_terminal(store):
    from autopeft.cli.planning import estimate_table
    from autopeft.hardware import list_profiles

    store.add_trial("demo", number=11, method="lora", params={"r": 4}, learning_rate=2e-4,
                    status="infeasible", reason="predicted peak 29.30 GiB (weights 1.2 GiB, "
                    "activations 27.1 GiB) > budget 13.5 GiB of t4-16gb", primary_metric=None,
                    metrics={}, trainable_params=600_000, total_params=22_700_000,
                    peak_memory_bytes=30_000 * MiB)
    store.add_trial("demo", number=12, method="ia3", params={}, learning_rate=1e-3,
                    status="completed", primary_metric=0.81, metrics={"accuracy": 0.81},
                    trainable_params=20_000, total_params=22_700_000,
                    peak_memory_bytes=800 * MiB, train_seconds=3.0, examples_per_second=90.0)
    front = trial_rows(front_trials(store, "demo"), detailed=False, primary="accuracy")
    short = trial_rows(store.trials("demo"), detailed=False, primary="accuracy")
    detailed = trial_rows(store.trials("demo"), detailed=True, primary="accuracy")
    assert render(front, "table", width=1000).splitlines()[2].__len__() > 100  # natural
    for rows in (front, short, detailed):
        text = render(rows, "table", title="t", width=100)
        _fits(text, 100)
        for r in rows:  # every trial, method and metric is still there
            assert re.search(rf"^ *{r['number']} +{r['method']}", text, re.M), r["number"]
            if r["accuracy"] is not None:
                assert f"{r['accuracy']:.4g}" in text
    # folded cells, the objectives kept, what was left out said under the table
    text = render(short, "table", width=100)
    assert "lr=0.0002 r=4 lora_alpha=16" in text  # lr with the effective params
    # status with its reason, wrapped in its column
    assert re.search(r"infeasible:.*\n.* predicted.*\n.* peak 29\.30", text)
    assert "20,000" in text and "(0.0881%)" in text  # trainable with its share
    assert "29.30 GiB" in text and "800.0 MiB" in text  # peak memory
    assert "not shown at this width: examples/s, train s" in text
    assert "status: completed (every row)" in render(front, "table", width=100)
    # JSON and CSV keep every column whatever the width
    assert list(json.loads(render(short, "json"))[0]) == short.columns
    assert render(short, "csv").splitlines()[0].split(",") == short.columns
    # other tables: studies, shipped profiles (GiB, not bytes), estimate
    _fits(render(study_rows(store.list_studies()), "table", title="Studies", width=100), 100)
    profiles = [{k: v for k, v in p.to_dict().items() if k not in ("match_names", "source")}
                for p in list_profiles()]
    text = render(profiles, "table", title="Shipped profiles", width=100)
    _fits(text, 100)
    assert "80.0 GiB" in text and "85899345920" not in text
    assert json.loads(render(profiles, "json"))[0]["memory_bytes"] > 2**30
    est = {"base_params": 60_506_624, "trainable_params": 294_912,
           "trainable_fraction": 0.004874, "total_params": 60_801_536, "device": "cuda",
           "dtype": "fp16", "batch_size": 4, "seq_len": 64, "predicted_peak_bytes": 437_348_352,
           "weights_bytes": 1, "trainable_state_bytes": 2, "activations_bytes": 3,
           "temporaries_bytes": 0, "prediction_seconds": 1.5, "profile": "t4-16gb",
           "profile_budget_bytes": 14_495_514_624, "fits": True}
    text = render(estimate_table(est), "table", width=100)
    _fits(text, 100)
    assert "0.487%" in text and "0.407 GiB" in text and "fits t4-16gb (13.5 GiB" in text


def test_reports_show_effective_params(store):
    from autopeft.export import model_card

    store.add_trial("demo", number=20, method="lora", params={"r": 4}, learning_rate=1e-3,
                    status="completed", primary_metric=0.5, metrics={}, trainable_params=1)
    store.add_trial("demo", number=21, method="bitfit", params={}, learning_rate=1e-3,
                    status="completed", primary_metric=0.5, metrics={}, trainable_params=1)
    store.add_trial("demo", number=22, method="retired_method", params={"k": 1},
                    learning_rate=1e-3, status="failed", metrics={})
    rows = {r["number"]: r for r in trial_rows(store.trials("demo"), detailed=True)}
    assert rows[20]["params"] == {"r": 4, "lora_alpha": 16, "lora_dropout": 0.0,
                                  "target_modules": ["q", "v"], "layers": "all",
                                  "use_dora": False, "use_rslora": False,
                                  "init_lora_weights": "default"}
    assert rows[21]["params"] == {}  # BitFit has no parameters
    assert rows[22]["params"] == {"k": 1}  # not registered here: shown as stored
    assert rows[0]["params"] == {"r": 8, "targets": ["q", "v"]}  # a name lora lacks: as stored
    trial = next(t for t in store.trials("demo") if t.number == 20)
    card = model_card(store.require_study("demo"), trial, store.safe_url)
    assert '"lora_alpha": 16' in card and '"r": 4' in card and "`{}`" not in card
