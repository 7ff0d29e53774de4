"""Fixtures of the hardware tests: a stand-in for the ``pynvml`` module.

GPUs are given as data and ``nvmlInit`` fails on request, so detection is tested for zero,
one, two and unknown GPUs and for a machine without the NVIDIA library, with no GPU here.
Tests get the classes through the ``nvml`` fixture (tests/ holds no packages to import).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

MiB = 2**20


class NVMLError_LibraryNotFound(Exception):  # noqa: N801  (pynvml's class name)
    """What ``pynvml.nvmlInit`` raises on a machine without the NVIDIA driver."""

    def __str__(self) -> str:
        return "NVML Shared Library Not Found"


@dataclass
class FakeGpu:
    name: str
    total_mib: int
    cc: tuple[int, int] | None = (8, 0)
    used_mib: int = 0


class FakeNvml:
    """Answers the calls :func:`autopeft.hardware.nvml.detect` makes."""

    def __init__(self, gpus: list[FakeGpu] | None = None, init_error: Exception | None = None,
                 driver: bytes | str = b"550.54.15") -> None:
        self.gpus = gpus or []
        self.init_error = init_error
        self.driver = driver
        self.initialised = False
        self.shutdowns = 0

    def nvmlInit(self) -> None:  # noqa: N802  (pynvml's names)
        if self.init_error is not None:
            raise self.init_error
        self.initialised = True

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> bytes | str:  # noqa: N802
        return self.driver

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGpu:  # noqa: N802
        return self.gpus[i]

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> bytes:  # noqa: N802
        return gpu.name.encode()  # older pynvml returns bytes

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(total=gpu.total_mib * MiB, free=(gpu.total_mib - gpu.used_mib) * MiB)

    def nvmlDeviceGetCudaComputeCapability(self, gpu: FakeGpu) -> tuple[int, int]:  # noqa: N802
        if gpu.cc is None:
            raise RuntimeError("NVMLError_NotSupported")
        return gpu.cc


@pytest.fixture
def nvml() -> SimpleNamespace:
    """``nvml.Fake(gpus)``, ``nvml.Gpu(name, total_mib, cc)``, ``nvml.LibraryNotFound``."""
    return SimpleNamespace(Fake=FakeNvml, Gpu=FakeGpu, LibraryNotFound=NVMLError_LibraryNotFound,
                           MiB=MiB)
