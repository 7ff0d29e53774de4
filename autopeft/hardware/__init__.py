"""Hardware: GPU detection (NVML) and the profiles a search plans for.

Importing this package imports neither torch nor pynvml: NVML is loaded when
:func:`detect` runs.
"""

from __future__ import annotations

from autopeft.hardware.nvml import Detection, GpuInfo, detect, hardware_summary
from autopeft.hardware.profiles import (
    Profile,
    derived_profile,
    detect_profile,
    list_profiles,
    load_profile,
    match_gpu,
    profiles_dir,
    resolve_profile,
)

__all__ = [
    "Detection",
    "GpuInfo",
    "Profile",
    "derived_profile",
    "detect",
    "detect_profile",
    "hardware_summary",
    "list_profiles",
    "load_profile",
    "match_gpu",
    "profiles_dir",
    "resolve_profile",
]
