"""``scripts/bench_memory.py --device cuda`` on CPU, through a fake ``torch.cuda`` memory-stats
boundary, so that the GPU benchmark's code path cannot rot where no GPU is lent.

The fake counts live CPU tensor storages in 512-byte blocks (the bookkeeping
``max_memory_allocated`` does on a GPU) from the moment the benchmark first asks it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from autopeft.memory.tracker import AllocationTracker
from autopeft.store import Store
from autopeft.testing import tiny_bert_config, tiny_t5_config

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_memory.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_memory", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeCudaStats:
    """``torch.cuda``'s memory statistics, counted on CPU tensors."""

    def __init__(self) -> None:
        self.tracker: AllocationTracker | None = None
        self.calls: list[str] = []

    def _live(self) -> AllocationTracker:
        if self.tracker is None:  # start counting when the benchmark first asks
            self.tracker = AllocationTracker(granularity=512)
            self.tracker.__enter__()
        return self.tracker

    def memory_allocated(self) -> int:
        self.calls.append("memory_allocated")
        return self._live().total

    def max_memory_allocated(self) -> int:
        self.calls.append("max_memory_allocated")
        return self._live().peak_bytes

    def reset_peak_memory_stats(self) -> None:
        self.calls.append("reset_peak_memory_stats")
        self._live().peak_bytes = self._live().total

    def synchronize(self) -> None:
        self.calls.append("synchronize")

    def empty_cache(self) -> None:
        self.calls.append("empty_cache")
        self._live()

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.__exit__(None, None, None)


def test_cuda_benchmark_path_runs_with_a_fake_device(bench, capsys):
    models = [("tiny-t5", tiny_t5_config()), ("tiny-bert", tiny_bert_config())]
    stats = FakeCudaStats()
    failures: list[str] = []
    try:
        rows = bench.cuda_compare(models, ["lora", "full"], shape={
            "batch_size": 2, "seq_len": 16, "target_len": 4}, device="cpu", stats=stats,
            workers=0, failures=failures)
    finally:
        stats.close()
    assert not failures and len(rows) == 2 * 2 * 2
    assert stats.calls.count("reset_peak_memory_stats") == 8
    by = {(r["model"], r["method"], r["dtype"]): r for r in rows}
    for model, _ in models:
        # the frozen base is held in bf16: the measured peak drops, and so does the plan
        assert by[model, "lora", "bf16"]["measured"] < by[model, "lora", "fp32"]["measured"]
        assert by[model, "lora", "bf16"]["predicted"] < by[model, "lora", "fp32"]["predicted"]
        # full fine-tuning trains everything: fp32 whatever the dtype
        assert by[model, "full", "bf16"]["measured"] > 0.9 * by[model, "full", "fp32"]["measured"]
    errors = [r["error"] for r in rows]
    # The fake runs the for-loop AdamW of CPU tensors where the prediction assumes CUDA's
    # foreach kernels; tensor counts otherwise agree.
    assert max(abs(e) for e in errors) < 0.25, rows
    out = capsys.readouterr().out
    assert "tiny-t5" in out and "8 predictions" in out
    assert bench.summary(errors).startswith("8 comparisons: median")


def test_packed_trials_print_against_their_gpu_share(bench, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    store = Store(url)
    store.create_study("packed", task="glue/sst2", model="m", space_name="quick", space={},
                       budget={}, hardware={"profile": {"budget_bytes": 100 * 2**20}},
                       settings={}, objectives=[("accuracy", "maximize")])
    for n, (measured, fraction) in enumerate([(20 * 2**20, 0.25), (40 * 2**20, 0.25)]):
        store.add_trial("packed", number=n, method="lora", params={}, learning_rate=1e-3,
                        status="completed", peak_memory_bytes=measured,
                        memory_kind="cuda_max_allocated",
                        extra={"gpu_fraction": fraction, "predicted_peak_bytes": measured - 1,
                               "peak_memory_meter": "cuda_allocated", "gpu_ids": ["0"]})
    store.close()
    rows = bench.packed_rows(url, "packed")
    assert [r["share"] for r in rows] == [25 * 2**20, 25 * 2**20]
    assert [r["meter"] for r in rows] == ["cuda_allocated"] * 2
    bench.print_packed(rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("within share") and lines[2].endswith("OVER SHARE")
