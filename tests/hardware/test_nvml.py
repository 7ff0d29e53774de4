"""GPU detection through a fake NVML module: zero, one, two GPUs, no NVIDIA library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autopeft.hardware.nvml import detect, hardware_summary

ROOT = Path(__file__).resolve().parents[2]


def test_library_not_found_gives_no_gpu_and_the_reason(nvml):
    fake = nvml.Fake(init_error=nvml.LibraryNotFound())
    det = detect(fake)
    assert det.gpus == [] and det.driver is None
    assert det.reason == "NVMLError_LibraryNotFound: NVML Shared Library Not Found"


def test_zero_gpus(nvml):
    fake = nvml.Fake(gpus=[])
    det = detect(fake)
    assert det.gpus == [] and det.reason == "NVML found no GPU"
    assert det.driver == "550.54.15"  # bytes decoded
    assert fake.shutdowns == 1


def test_one_gpu_reports_name_memory_and_capability(nvml):
    det = detect(nvml.Fake([nvml.Gpu("NVIDIA A100-SXM4-80GB", 81920, (8, 0), used_mib=1024)]))
    (gpu,) = det.gpus
    assert gpu.index == 0 and gpu.name == "NVIDIA A100-SXM4-80GB"
    assert gpu.total_memory == 81920 * nvml.MiB
    assert gpu.free_memory == (81920 - 1024) * nvml.MiB
    assert gpu.compute_capability == (8, 0)
    assert det.reason is None


def test_two_gpus_and_a_driver_without_compute_capability(nvml):
    det = detect(nvml.Fake([nvml.Gpu("Tesla T4", 15360, None), nvml.Gpu("Tesla T4", 15360)]))
    assert [g.index for g in det.gpus] == [0, 1]
    assert det.gpus[0].compute_capability is None
    assert det.gpus[1].compute_capability == (8, 0)


def test_cuda_visible_devices_restricts_the_gpus(nvml, monkeypatch):
    gpus = [nvml.Gpu(f"NVIDIA L4 #{i}", 23034, (8, 9)) for i in range(3)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert [g.index for g in detect(nvml.Fake(gpus)).gpus] == [0, 2]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f2c")  # UUIDs: not filtered by index
    assert len(detect(nvml.Fake(gpus)).gpus) == 3


def test_an_error_after_init_still_shuts_nvml_down(nvml):
    fake = nvml.Fake([nvml.Gpu("NVIDIA H100 80GB HBM3", 81559)])

    def lost() -> int:
        raise RuntimeError("GPU is lost")

    fake.nvmlDeviceGetCount = lost
    with pytest.raises(RuntimeError, match="GPU is lost"):
        detect(fake)
    assert fake.shutdowns == 1


def test_hardware_summary_is_json_ready(nvml):
    summary = hardware_summary(nvml.Fake([nvml.Gpu("NVIDIA L4", 23034, (8, 9))]))
    assert json.loads(json.dumps(summary))["gpus"][0]["name"] == "NVIDIA L4"
    assert summary["memory_bytes"] > 0 and summary["gpu_reason"] is None


def test_only_the_nvml_module_imports_pynvml_and_the_package_is_light():
    importers = [
        str(p.relative_to(ROOT)) for p in (ROOT / "autopeft").rglob("*.py")
        if "import pynvml" in p.read_text() or "from pynvml" in p.read_text()
    ]
    assert importers == ["autopeft/hardware/nvml.py"]
    code = (
        "import sys, autopeft.hardware, autopeft.memory\n"
        "heavy = {'torch', 'pynvml', 'transformers', 'peft'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
