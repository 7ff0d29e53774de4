"""Hardware profiles: how much memory a trial may use, and what the device supports.

A profile is YAML data (``profiles/<name>.yaml`` shipped with autopeft, or any file)
checked against :class:`Profile` at load time: an unknown key is an error that names it.
``--profile NAME|FILE`` plans for hardware you do not have; without it the machine is
detected through NVML (:func:`detect_profile`): each GPU is matched to a profile by name and
memory, an unknown GPU gets a profile derived from what NVML reports, and a machine without
GPU gets the ``cpu`` profile.

Sizes in YAML are bytes or strings with a unit (``40960 MiB``, ``80 GB``); the cpu
profile's ``memory_bytes: auto`` is this machine's RAM. No torch, no pynvml here: NVML is
queried through :mod:`autopeft.hardware.nvml` only when detecting.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopeft.errors import AutopeftError, excerpt
from autopeft.hardware.nvml import Detection, GpuInfo, detect
from autopeft.paths import shipped_dir

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
_UNITS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
# A detected GPU matches a profile when its memory is within this fraction of the
# profile's: tells A100 40 GB from 80 GB while absorbing what drivers reserve.
MEMORY_TOLERANCE = 0.12
# Headroom of derived profiles: CUDA context, library workspaces, allocator fragmentation.
DERIVED_USABLE_FRACTION = 0.9


def profiles_dir() -> Traversable:
    """The folder of built-in profiles (``profiles/``; see :func:`autopeft.paths.shipped_dir`)."""
    return shipped_dir("profiles")


@dataclass(frozen=True)
class Profile:
    """A device a search plans for. Validated on construction.

    Attributes:
        name: Lowercase identifier (``a100-80gb``); the file stem for built-ins.
        description: One line for people.
        device: ``cuda`` or ``cpu``.
        memory_bytes: Memory of one device (RAM for ``cpu``).
        usable_fraction: Share of ``memory_bytes`` trials may use; the rest is headroom
            for the CUDA context, library workspaces and fragmentation. Exclusive with
            ``usable_bytes``.
        usable_bytes: Absolute usable bytes per device, instead of a fraction.
        bf16: The device trains in bfloat16 (compute capability >= 8.0).
        fp16: The device trains in float16 mixed precision.
        peak_tflops: Peak dense 16-bit tensor TFLOP/s (bf16 where supported, else fp16;
            fp32 accumulate), or None when unknown / not meaningful (CPU).
        trials_per_device: Trials that run at once on one device; they share its memory.
        gpu_count: GPUs of this kind (0 for a ``cpu`` profile).
        match_names: GPU names (as NVML reports them) this profile stands for, matched as
            whole words, case-insensitive.
        source: The file the profile came from, or how it was detected.
    """

    name: str
    description: str
    device: str
    memory_bytes: int
    usable_fraction: float | None
    usable_bytes: int | None
    bf16: bool
    fp16: bool
    peak_tflops: float | None
    trials_per_device: int
    gpu_count: int = 1
    match_names: tuple[str, ...] = ()
    source: str | None = None

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> AutopeftError:
            return AutopeftError(f"profile '{self.name}': {key} {why}")

        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise AutopeftError(
                f"profile name {excerpt(self.name)} must be lowercase letters, digits, "
                "'.', '_', '-'"
            )
        if not isinstance(self.description, str):
            raise bad("description", "must be a string")
        if self.device not in ("cuda", "cpu"):
            raise bad("device", f"must be 'cuda' or 'cpu', got {excerpt(self.device)}")
        if not _is_int(self.memory_bytes) or self.memory_bytes <= 0:
            raise bad("memory_bytes", f"must be a positive number of bytes, got "
                      f"{excerpt(self.memory_bytes)}")
        if (self.usable_fraction is None) == (self.usable_bytes is None):
            raise bad("usable_fraction/usable_bytes", "needs exactly one of the two")
        if self.usable_fraction is not None and not (
            _is_number(self.usable_fraction) and 0 < self.usable_fraction <= 1
        ):
            raise bad("usable_fraction", f"must be in (0, 1], got {excerpt(self.usable_fraction)}")
        if self.usable_bytes is not None and not (
            _is_int(self.usable_bytes) and 0 < self.usable_bytes <= self.memory_bytes
        ):
            raise bad("usable_bytes",
                      f"must be in (0, memory_bytes], got {excerpt(self.usable_bytes)}")
        for key in ("bf16", "fp16"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, f"must be true or false, got {excerpt(getattr(self, key))}")
        if self.peak_tflops is not None and not (
            _is_number(self.peak_tflops) and self.peak_tflops > 0
        ):
            raise bad("peak_tflops", f"must be a positive number or null, got "
                      f"{excerpt(self.peak_tflops)}")
        if not _is_int(self.trials_per_device) or self.trials_per_device < 1:
            raise bad("trials_per_device", f"must be a positive integer, got "
                      f"{excerpt(self.trials_per_device)}")
        if self.device == "cpu":
            want, ok = "0 for a cpu profile", self.gpu_count == 0
        else:
            want, ok = "a positive integer", _is_int(self.gpu_count) and self.gpu_count >= 1
        if not _is_int(self.gpu_count) or not ok:
            raise bad("gpu_count", f"must be {want}, got {excerpt(self.gpu_count)}")
        if isinstance(self.match_names, str) or not all(
            isinstance(n, str) and n.strip() for n in self.match_names
        ):
            raise bad("match_names", "must be a list of GPU names")
        object.__setattr__(self, "match_names", tuple(self.match_names))

    def budget_bytes(self) -> int:
        """Usable memory of one device."""
        if self.usable_bytes is not None:
            return self.usable_bytes
        return int(self.memory_bytes * self.usable_fraction)

    def trial_budget_bytes(self) -> int:
        """Memory one trial may use: the device budget shared by ``trials_per_device``."""
        return self.budget_bytes() // self.trials_per_device

    def matches(self, gpu_name: str) -> bool:
        """Whether one of ``match_names`` occurs in ``gpu_name`` as whole words."""
        return any(_word_match(n, gpu_name) for n in self.match_names)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready), with the computed ``budget_bytes``."""
        out = asdict(self)
        out["match_names"] = list(self.match_names)
        out["budget_bytes"] = self.budget_bytes()
        return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _word_match(pattern: str, name: str) -> bool:
    # "L4" must not match "L40S", nor "A10" match "A100": letters/digits may not touch.
    words = r"[\s_-]+".join(re.escape(w) for w in pattern.split())
    return re.search(rf"(?<![A-Za-z0-9]){words}(?![A-Za-z0-9])", name, re.IGNORECASE) is not None


def parse_size(value: Any, key: str) -> int:
    """Bytes from an int or a string with a unit (``40960 MiB``, ``80GB``)."""
    if _is_int(value):
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m and m.group(2).lower() in _UNITS | {"": 1}:
            return int(float(m.group(1)) * _UNITS.get(m.group(2).lower(), 1))
    raise AutopeftError(f"{key} must be bytes or a size like '40 GiB', got {excerpt(value)}")


# -- loading ----------------------------------------------------------------------------
_YAML_KEYS = tuple(f.name for f in fields(Profile) if f.name != "source")


def _machine_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def profile_from_dict(data: Any, *, name: str, source: str) -> Profile:
    """A :class:`Profile` from YAML data; errors name ``source`` and the key."""
    if not isinstance(data, dict):
        raise AutopeftError(f"{source}: a profile must be a mapping of keys to values")
    unknown = sorted(str(k) for k in data if k not in _YAML_KEYS)
    if unknown:
        raise AutopeftError(
            f"{source}: unknown key {', '.join(map(excerpt, unknown[:5]))}; "
            f"known keys: {', '.join(_YAML_KEYS)}"
        )
    values = {"name": name, "description": "", "usable_fraction": None, "usable_bytes": None,
              "bf16": False, "fp16": False, "peak_tflops": None, "trials_per_device": 1}
    values["gpu_count"] = 0 if data.get("device") == "cpu" else 1
    values.update(data)
    missing = [k for k in ("device", "memory_bytes") if values.get(k) is None]
    if missing:
        raise AutopeftError(f"{source}: missing key {', '.join(map(repr, missing))}")
    try:
        if values["memory_bytes"] == "auto":
            values["memory_bytes"] = _machine_memory()
        values["memory_bytes"] = parse_size(values["memory_bytes"], "memory_bytes")
        if values["usable_bytes"] is not None:
            values["usable_bytes"] = parse_size(values["usable_bytes"], "usable_bytes")
        if isinstance(values.get("match_names"), list):
            values["match_names"] = tuple(values["match_names"])
        return Profile(**values, source=source)
    except AutopeftError as exc:
        raise AutopeftError(f"{source}: {exc}") from None


def _load_file(path: Path | Traversable, name: str | None = None) -> Profile:
    from autopeft.yamlio import read_yaml_file

    data = read_yaml_file(path, f"profile file {path}")
    name = name or Path(path.name).stem.lower()
    return profile_from_dict(data, name=name, source=str(path))


def _builtin_names() -> list[str]:
    folder = profiles_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str) -> Profile:
    """A built-in profile by name (``a100-80gb``) or a profile YAML file by path.

    Raises:
        AutopeftError: Unknown name (the message lists the known ones), missing file, bad
            YAML, unknown key or invalid value (naming the key).
    """
    arg = str(name_or_path).strip()
    path = Path(arg).expanduser()
    if "/" in arg or "\\" in arg or path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise AutopeftError(f"profile file {excerpt(arg)} does not exist")
        return _load_file(path)
    builtin = profiles_dir() / f"{arg}.yaml"
    if not _NAME_RE.match(arg) or not builtin.is_file():
        known = ", ".join(_builtin_names()) or "none"
        raise AutopeftError(
            f"unknown profile {excerpt(arg)}; known profiles: {known}; or give a YAML file"
        )
    return _load_file(builtin, arg)


def list_profiles() -> list[Profile]:
    """Every built-in profile, sorted by name."""
    return [load_profile(name) for name in _builtin_names()]


# -- detection --------------------------------------------------------------------------
def match_gpu(gpu: GpuInfo, profiles: list[Profile]) -> Profile | None:
    """The GPU profile whose names match ``gpu`` and whose memory is closest (within
    ``MEMORY_TOLERANCE``), or None."""
    candidates = [
        p for p in profiles
        if p.device == "cuda" and p.matches(gpu.name)
        and abs(gpu.total_memory - p.memory_bytes) <= MEMORY_TOLERANCE * p.memory_bytes
    ]
    return min(candidates, key=lambda p: abs(gpu.total_memory - p.memory_bytes), default=None)


def derived_profile(gpu: GpuInfo) -> Profile:
    """A profile for a GPU no built-in profile matches, from what NVML reports."""
    cc = gpu.compute_capability
    slug = re.sub(r"[^a-z0-9]+", "-", gpu.name.lower()).strip("-") or "gpu"
    gib = gpu.total_memory / 2**30
    cc_text = f"compute capability {cc[0]}.{cc[1]}" if cc else "compute capability unknown"
    return Profile(
        name=f"detected-{slug}",
        description=f"derived from NVML: {gpu.name}, {gib:.1f} GiB, {cc_text}",
        device="cuda",
        memory_bytes=gpu.total_memory,
        usable_fraction=DERIVED_USABLE_FRACTION,
        usable_bytes=None,
        bf16=cc is not None and tuple(cc) >= (8, 0),  # Ampere and later
        fp16=cc is None or tuple(cc) >= (5, 3),  # half arithmetic since Maxwell (5.3)
        peak_tflops=None,
        trials_per_device=1,
        gpu_count=1,
        match_names=(gpu.name,),
        source="derived from NVML",
    )


def _profile_for(gpu: GpuInfo, profiles: list[Profile]) -> Profile:
    matched = match_gpu(gpu, profiles)
    if matched is None:
        return derived_profile(gpu)
    if matched.usable_fraction is not None:
        # The detected size is exact where the profile's is nominal; the fraction scales.
        matched = replace(matched, memory_bytes=gpu.total_memory)
    return replace(matched, source=f"{matched.source} (matched '{gpu.name}')")


def detect_profile(nvml: Any | None = None) -> tuple[Profile, Detection]:
    """The profile of this machine, detected through NVML.

    No GPU (or no NVML) gives the ``cpu`` profile; ``Detection.reason`` says why. GPUs
    are matched by name and memory; a GPU no profile matches gets a derived profile. With
    GPUs of different kinds, the one with the smallest per-trial budget is planned for
    (every trial must fit on any of them), with ``gpu_count`` counting all.

    Args:
        nvml: A stand-in for ``pynvml`` (tests), or None.
    """
    det = detect(nvml)
    if not det.gpus:
        return load_profile("cpu"), det
    builtins = list_profiles()
    per_gpu = [_profile_for(g, builtins) for g in det.gpus]
    chosen = min(per_gpu, key=lambda p: p.trial_budget_bytes())
    kinds = sorted({g.name for g in det.gpus})
    if len(kinds) > 1:
        chosen = replace(chosen, description=f"{chosen.description}; mixed GPUs "
                         f"({', '.join(kinds)}): planned for the smallest")
    return replace(chosen, gpu_count=len(det.gpus)), det


def resolve_profile(arg: str | None, nvml: Any | None = None) -> tuple[Profile, Detection | None]:
    """``--profile``: None or ``auto`` detects; a name or file loads (no detection, so the
    returned detection is None)."""
    if arg is None or str(arg).strip().lower() == "auto":
        return detect_profile(nvml)
    return load_profile(arg), None
