"""The one dtype policy: what a trial computes in, per precision and device."""

from __future__ import annotations

import pytest

from autopeft.errors import AutopeftError
from autopeft.hardware import load_profile
from autopeft.precision import profile_dtype, training_dtype


@pytest.mark.parametrize(("precision", "bf16", "fp16", "expected"), [
    ("auto", True, True, "bf16"),
    ("auto", False, True, "fp16"),  # V100, T4
    ("auto", False, False, "fp32"),
    ("fp32", True, True, "fp32"),  # asked: honoured
    ("fp16", True, True, "fp16"),
    ("bf16", True, True, "bf16"),
])
def test_cuda_dtype(precision, bf16, fp16, expected):
    assert training_dtype(precision, "cuda", bf16=bf16, fp16=fp16) == expected


@pytest.mark.parametrize("precision", ["auto", "fp32"])
def test_cpu_trains_in_fp32(precision):
    assert training_dtype(precision, "cpu", bf16=True) == "fp32"
    assert profile_dtype(precision, load_profile("cpu")) == "fp32"


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_16_bits_on_cpu_are_refused_not_silently_trained_in_fp32(precision):
    with pytest.raises(AutopeftError, match=f"--precision {precision} needs a CUDA GPU"):
        training_dtype(precision, "cpu", bf16=True)
    with pytest.raises(AutopeftError, match="needs a CUDA GPU"):
        profile_dtype(precision, load_profile("cpu"))
    assert profile_dtype(precision, load_profile("a100-80gb")) == precision


def test_unknown_precision():
    with pytest.raises(AutopeftError, match="unknown precision 'fp8'"):
        training_dtype("fp8", "cuda", bf16=True)
