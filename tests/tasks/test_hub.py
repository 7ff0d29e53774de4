"""Loading from the hub: column mapping with a fake ``load_dataset``, offline errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from autopeft.errors import AutopeftError
from autopeft.hub import hub_unreachable_reason
from autopeft.paths import ENV_DATA_DIR
from autopeft.tasks import Example, load_task
from autopeft.tasks import hub as hub_module


@pytest.fixture
def no_local(monkeypatch, tmp_path) -> Path:
    """No local copy of anything, hub reachable as far as DNS goes, not in offline mode."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path))
    # the network check passes (the fake load_dataset decides); the offline flag still counts
    monkeypatch.setattr("autopeft.hub.socket.getaddrinfo", lambda *a, **k: [])
    monkeypatch.setattr("autopeft.hub._can_connect", lambda *a: True)
    return tmp_path


def _fake_hub(monkeypatch, splits_by_config: dict, calls: list) -> None:
    import datasets

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name))
        return splits_by_config[name]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)


def test_hub_mapping_with_datasets(monkeypatch, no_local):
    import datasets

    train = datasets.Dataset.from_dict(
        {"premise": ["p1", "p2", "p3"], "hypothesis": ["h1", "h2", "h3"], "label": [0, 2, 1],
         "idx": [0, 1, 2]})
    matched = datasets.Dataset.from_dict(
        {"premise": ["q"], "hypothesis": ["r"], "label": [1], "idx": [0]})
    test = datasets.Dataset.from_dict({"premise": ["t"], "hypothesis": ["u"], "label": [-1]})
    calls: list = []
    fake = {"mnli": datasets.DatasetDict(train=train, validation_matched=matched,
                                         test_matched=test)}
    _fake_hub(monkeypatch, fake, calls)
    data = load_task("glue/mnli", train_samples=2, seed=3)
    assert calls == [("nyu-mll/glue", "mnli")]
    assert data.source == "hub:nyu-mll/glue/mnli"
    assert data.eval == [Example(("q", "r"), 1)]
    assert len(data.train) == 2
    assert set(data.train) <= {Example(("p1", "h1"), 0), Example(("p2", "h2"), 2),
                               Example(("p3", "h3"), 1)}


def test_hub_mapping_with_plain_dicts(monkeypatch, no_local):
    split = {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [4.2, 0.0]}
    calls: list = []
    _fake_hub(monkeypatch, {"stsb": {"train": split, "validation": split}}, calls)
    data = load_task("glue/stsb")
    assert data.train == [Example(("a", "c"), 4.2), Example(("b", "d"), 0.0)]
    assert isinstance(data.train[1].label, float)

    boolq = {"question": ["q"], "passage": ["p"], "label": [-1], "idx": [0]}
    _fake_hub(monkeypatch, {"boolq": {"train": split, "validation": boolq}}, calls)
    with pytest.raises(AutopeftError, match="has no column 'question'"):
        load_task("superglue/boolq")
    _fake_hub(monkeypatch, {"boolq": {"train": boolq}}, calls)
    with pytest.raises(AutopeftError, match="no split 'validation'"):
        load_task("superglue/boolq")
    _fake_hub(monkeypatch, {"boolq": {"train": {**boolq, "label": [5]}}}, calls)
    with pytest.raises(AutopeftError, match="label 5, expected 0..1"):
        load_task("superglue/boolq")
    assert calls[-1] == ("aps/super_glue", "boolq")


def test_hub_failure_is_one_line_with_the_fix(monkeypatch, no_local):
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub\n(LocalEntryNotFound)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(AutopeftError) as info:
        load_task("glue/mrpc")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"cannot load glue/mrpc: no local copy under {no_local} and the "
                              "hub is unreachable (ConnectionError: Couldn't reach")
    assert message.endswith("pass --data-dir DIR (or set AUTOPEFT_DATA_DIR) pointing at a "
                            "folder with glue/mrpc/train.tsv and dev.tsv")


def test_offline_mode_skips_the_hub(monkeypatch, no_local):
    calls: list = []
    _fake_hub(monkeypatch, {}, calls)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(ENV_DATA_DIR)
    monkeypatch.setattr("autopeft.paths.default_data_dir", lambda: None)
    with pytest.raises(AutopeftError, match=r"no local copy \(no --data-dir\) and the hub is "
                       r"unreachable \(offline mode \(HF_HUB_OFFLINE=1\)\).*superglue/cb/"
                       r"train.jsonl and val.jsonl"):
        load_task("superglue/cb")
    assert calls == []


def test_unresolvable_hub_host_skips_load_dataset(monkeypatch, tmp_path):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy",
                "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    seen: list = []

    def no_dns(host, port, *args, **kwargs):
        seen.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    calls: list = []
    _fake_hub(monkeypatch, {}, calls)
    with pytest.raises(AutopeftError, match="host name does not resolve"):
        load_task("glue/qqp")
    assert seen == ["hub.invalid"] and calls == []
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert hub_unreachable_reason() is None


def test_explicit_data_dir_never_falls_back_to_the_hub(monkeypatch, tmp_path):
    calls: list = []
    _fake_hub(monkeypatch, {}, calls)
    monkeypatch.setattr(hub_module, "hub_unreachable_reason", lambda: None)
    with pytest.raises(AutopeftError, match="no folder"):
        load_task("glue/qqp", data_dir=tmp_path)
    assert calls == []
