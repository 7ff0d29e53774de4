"""Hardware profiles: every built-in loads, bad YAML is refused by key, GPUs are matched."""

from __future__ import annotations

import json

import psutil
import pytest

from autopeft.errors import AutopeftError
from autopeft.hardware import (
    Profile,
    detect_profile,
    list_profiles,
    load_profile,
    profiles_dir,
    resolve_profile,
)

REQUIRED = {
    "a100-40gb", "a100-80gb", "h100-80gb", "h200-141gb", "l4-24gb", "t4-16gb", "v100-16gb",
    "v100-32gb", "a10g-24gb", "rtx4090-24gb", "rtx3090-24gb", "cpu",
}
GOOD = """\
description: test GPU
device: cuda
memory_bytes: 16 GiB
usable_fraction: 0.5
bf16: true
fp16: true
peak_tflops: 10
trials_per_device: 2
"""


def write(tmp_path, text: str, name: str = "mine.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------- loading
def test_every_builtin_profile_loads_and_is_sane():
    profiles = {p.name: p for p in list_profiles()}
    assert REQUIRED <= set(profiles)
    assert len(profiles) == len([p for p in profiles_dir().iterdir() if p.name.endswith(".yaml")])
    for p in profiles.values():
        assert 0 < p.budget_bytes() < p.memory_bytes, p.name
        assert json.loads(json.dumps(p.to_dict()))["budget_bytes"] == p.budget_bytes()
        if p.device == "cuda":
            assert p.gpu_count == 1 and p.fp16 and p.match_names and p.peak_tflops
    assert profiles["cpu"].memory_bytes == psutil.virtual_memory().total
    assert profiles["cpu"].gpu_count == 0 and not profiles["cpu"].bf16
    assert not profiles["v100-32gb"].bf16 and not profiles["t4-16gb"].bf16
    assert profiles["a100-80gb"].budget_bytes() == int(81920 * 2**20 * 0.9)


def test_a_profile_file_by_path(tmp_path):
    p = load_profile(str(write(tmp_path, GOOD)))
    assert p.name == "mine" and p.memory_bytes == 16 * 2**30 and p.gpu_count == 1
    assert p.budget_bytes() == 8 * 2**30 and p.trial_budget_bytes() == 4 * 2**30
    assert p.source.endswith("mine.yaml")


def test_usable_bytes_instead_of_a_fraction(tmp_path):
    text = GOOD.replace("usable_fraction: 0.5", "usable_bytes: 15000 MB")
    assert load_profile(str(write(tmp_path, text))).budget_bytes() == 15 * 10**9


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("trials_per_device: 2", "trials_per_device: 2\nflops: 3"), "unknown key 'flops'"),
        (("memory_bytes: 16 GiB", "memory_bytes: -16"), "memory_bytes"),
        (("memory_bytes: 16 GiB", "memory_bytes: 16 parsecs"), "memory_bytes"),
        (("usable_fraction: 0.5", "usable_fraction: 0.5\nusable_bytes: 1 GiB"),
         "usable_fraction/usable_bytes"),
        (("usable_fraction: 0.5", "usable_fraction: 1.5"), "usable_fraction"),
        (("usable_fraction: 0.5", "usable_bytes: 17 GiB"), "usable_bytes"),
        (("device: cuda", "device: tpu"), "device"),
        (("bf16: true", "bf16: yes please"), "bf16"),
        (("trials_per_device: 2", "trials_per_device: 0"), "trials_per_device"),
        (("peak_tflops: 10", "peak_tflops: -1"), "peak_tflops"),
        (("device: cuda", "device: cuda\ngpu_count: 0"), "gpu_count"),
        (("device: cuda\n", ""), "missing key 'device'"),
    ],
)
def test_bad_profiles_are_one_line_errors_naming_the_key(tmp_path, change, needle):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(AutopeftError) as err:
        load_profile(str(path))
    message = str(err.value)
    assert needle in message and str(path) in message and "\n" not in message


def test_not_a_mapping_and_invalid_yaml(tmp_path):
    with pytest.raises(AutopeftError, match="mapping"):
        load_profile(str(write(tmp_path, "- a\n- b\n")))
    with pytest.raises(AutopeftError, match="invalid YAML"):
        load_profile(str(write(tmp_path, "device: [cuda\n")))


def test_unknown_names_list_the_known_ones(tmp_path):
    with pytest.raises(AutopeftError) as err:
        load_profile("a100-90gb")
    assert "a100-80gb" in str(err.value) and "cpu" in str(err.value)
    with pytest.raises(AutopeftError, match="does not exist"):
        load_profile(str(tmp_path / "nope.yaml"))
    with pytest.raises(AutopeftError, match="does not exist"):
        load_profile("../profiles/cpu")  # a path, not a name: no .yaml is added


def test_cpu_profile_needs_zero_gpus():
    with pytest.raises(AutopeftError, match="gpu_count"):
        Profile("x", "", "cpu", 2**30, 0.5, None, False, False, None, 1)  # gpu_count=1
    assert Profile("x", "", "cpu", 2**30, 0.5, None, False, False, None, 1, 0).budget_bytes()


# ----------------------------------------------------------------------------- detection
def test_no_nvml_library_gives_the_cpu_profile_with_the_reason(nvml):
    profile, det = detect_profile(nvml.Fake(init_error=nvml.LibraryNotFound()))
    assert profile.name == "cpu" and profile.device == "cpu"
    assert det.reason.startswith("NVMLError_LibraryNotFound")


def test_zero_gpus_gives_the_cpu_profile(nvml):
    profile, det = detect_profile(nvml.Fake([]))
    assert profile.name == "cpu" and det.reason == "NVML found no GPU"


@pytest.mark.parametrize(
    ("name", "mib", "expected"),
    [
        ("NVIDIA A100-SXM4-80GB", 81920, "a100-80gb"),
        ("NVIDIA A100-PCIE-40GB", 40536, "a100-40gb"),
        ("NVIDIA H100 80GB HBM3", 81559, "h100-80gb"),
        ("NVIDIA H200", 143771, "h200-141gb"),
        ("NVIDIA L4", 23034, "l4-24gb"),
        ("Tesla T4", 15360, "t4-16gb"),
        ("Tesla V100-SXM2-16GB", 16160, "v100-16gb"),
        ("Tesla V100-SXM2-32GB", 32510, "v100-32gb"),
        ("NVIDIA A10G", 23028, "a10g-24gb"),
        ("NVIDIA GeForce RTX 4090", 24564, "rtx4090-24gb"),
        ("NVIDIA GeForce RTX 3090", 24576, "rtx3090-24gb"),
    ],
)
def test_one_known_gpu_is_matched_by_name_and_memory(nvml, name, mib, expected):
    profile, det = detect_profile(nvml.Fake([nvml.Gpu(name, mib, (8, 0))]))
    assert profile.name == expected and profile.gpu_count == 1 and det.reason is None
    # The detected size replaces the nominal one; the profile's fraction applies to it.
    assert profile.memory_bytes == mib * nvml.MiB
    assert name in profile.source


def test_two_gpus_count_and_share_one_profile(nvml):
    gpus = [nvml.Gpu("NVIDIA H100 80GB HBM3", 81559, (9, 0))] * 2
    profile, det = detect_profile(nvml.Fake(gpus))
    assert profile.name == "h100-80gb" and profile.gpu_count == 2 and len(det.gpus) == 2


@pytest.mark.parametrize(
    ("name", "mib", "cc", "bf16"),
    [
        ("NVIDIA Mystery X", 37 * 1024 + 5, (8, 6), True),  # unknown name, odd memory
        ("NVIDIA A100 60GB", 61440, (8, 0), True),  # known name, memory of no profile
        ("NVIDIA L40S", 46068, (8, 9), True),  # "L4" must not match "L40S"
        ("Quadro P6000", 24449, (6, 1), False),
        ("Some GPU", 8000, None, False),
    ],
)
def test_unknown_gpus_get_a_derived_profile(nvml, name, mib, cc, bf16):
    profile, _ = detect_profile(nvml.Fake([nvml.Gpu(name, mib, cc)]))
    assert profile.name.startswith("detected-") and profile.device == "cuda"
    assert profile.memory_bytes == mib * nvml.MiB and profile.bf16 is bf16 and profile.fp16
    assert profile.budget_bytes() == int(mib * nvml.MiB * 0.9)
    assert name in profile.description


def test_mixed_gpus_plan_for_the_smallest(nvml):
    gpus = [nvml.Gpu("NVIDIA A100-SXM4-80GB", 81920), nvml.Gpu("Tesla T4", 15360, (7, 5))]
    profile, _ = detect_profile(nvml.Fake(gpus))
    assert profile.name == "t4-16gb" and profile.gpu_count == 2 and "mixed" in profile.description


def test_resolve_profile_detects_or_loads(nvml, tmp_path):
    fake = nvml.Fake([nvml.Gpu("NVIDIA L4", 23034, (8, 9))])
    assert resolve_profile(None, fake)[0].name == "l4-24gb"
    assert resolve_profile("auto", fake)[1].gpus[0].name == "NVIDIA L4"
    profile, det = resolve_profile("a100-80gb", fake)  # planning for hardware we lack
    assert profile.name == "a100-80gb" and det is None and fake.shutdowns == 2
    assert resolve_profile(str(write(tmp_path, GOOD)))[0].name == "mine"
